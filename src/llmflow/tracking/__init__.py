"""Everything that writes to or reads from MLflow. Knows no provider's wire format."""

import os

# llmflow prices calls itself (genai-prices); MLflow's remote model catalog would be fetched on
# the first traced call with a provider set and takes seconds to time out offline.
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")
# against a tracking server, MLflow prints "View run ... at: <tracking URI>" to stdout as each
# run ends: it mixes into the comparison table on stdout and shows a URI's password
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
