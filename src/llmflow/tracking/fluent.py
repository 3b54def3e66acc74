"""MLflow's fluent API pointed at one store for a moment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def fluent_store(tracking_uri: str) -> Iterator[None]:
    """The caller's store for MLflow's fluent API (`log_model` and `register_model` have no
    client twin), restored after, so that llmflow never changes the process's global URI."""
    import mlflow

    before = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
