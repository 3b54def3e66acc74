"""Which MLflow store a command uses: light, so that `llmflow run` knows it before importing
anything else (it starts the worker's process at once, worker/pool.py)."""

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
    path = sqlite_file(uri)
    if path is not None and not path.is_absolute():
        _, query_mark, query = uri.partition("?")
        uri = SQLITE_PREFIX + str(path.resolve()) + query_mark + query
    return uri


SQLITE_PREFIX = "sqlite:///"


def sqlite_file(tracking_uri: str) -> Path | None:
    """The file a `sqlite:///` URI names, its query (`?timeout=30`, which SQLAlchemy reads) left
    out; None for any other URI and for an in-memory database."""
    if not tracking_uri.startswith(SQLITE_PREFIX) or ":memory:" in tracking_uri:
        return None
    return Path(tracking_uri[len(SQLITE_PREFIX) :].partition("?")[0])
