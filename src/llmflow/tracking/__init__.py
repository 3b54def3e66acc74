"""Everything that writes to or reads from MLflow. Knows no provider's wire format.

Importing it sets nothing: the MLflow settings of llmflow's own processes are in _process.py."""
