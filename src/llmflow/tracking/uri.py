"""Which MLflow store a command uses: light, so that `llmflow run` knows it before importing
anything else (it starts the trace writer's process at once, writer_pool.py)."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def resolve_tracking_uri(option: str | None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working dir.

    A relative sqlite path is made absolute, so the store printed is the one written, whatever
    the working directory later is (and MLflow's tracer, keyed by URI, follows a change).
    """
    uri = option or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and ":memory:" not in uri:
        uri = prefix + str(Path(uri[len(prefix) :]).resolve())
    return uri
