"""Everything that writes to or reads from MLflow. Knows no provider's wire format."""

import os

# llmflow prices calls itself (genai-prices); MLflow's remote model catalog would be fetched on
# the first traced call with a provider set and takes seconds to time out offline.
os.environ.setdefault("MLFLOW_MODEL_CATALOG_URI", "")
# Traces are written from llmflow's own background thread (tracking/traces.py), which counts
# every one; MLflow's async queue on top of it would drop traces silently when it fills up.
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
