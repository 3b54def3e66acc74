"""A classifier trained in the run (`provider: sklearn`), logged on its variant run: the
training's metrics and the fitted pipeline as an MLflow sklearn model, with its signature (one
string column of texts), which registration then uses (MODEL_URI_TAG)."""

from __future__ import annotations

import contextlib
import io
import time
import warnings
from typing import Any

from ..providers.spec import SKLEARN
from .fluent import fluent_store
from .schema import TAG_MODEL_URI

MODEL_URI_TAG = TAG_MODEL_URI  # where the variant run's logged sklearn model is


def log_trained_model(client: Any, run_id: str, pipeline: Any, training: dict[str, float]) -> None:
    """Log the training metrics and the fitted pipeline, as an MLflow sklearn model, on the
    (finished) variant run; the model's URI goes in the tag MODEL_URI_TAG."""
    import mlflow
    import sklearn
    from mlflow.entities import Metric
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    now = int(time.time() * 1000)
    metrics = [Metric(k, v, now, 0) for k, v in training.items()]
    client.log_batch(run_id, metrics=metrics)
    (requirement,) = SKLEARN.pip_requirements
    requirements = [f"{requirement}=={sklearn.__version__}"]
    # one string column, read by position: every input form pyfunc serves fits it
    signature = ModelSignature(
        inputs=Schema([ColSpec("string")]), outputs=Schema([ColSpec("string")])
    )
    status = client.get_run(run_id).info.status
    # MLflow prints hints on stderr; the run reports in its own words
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            with fluent_store(client.tracking_uri), mlflow.start_run(run_id=run_id):
                info = mlflow.sklearn.log_model(
                    pipeline, name="model", pip_requirements=requirements, signature=signature
                )
        finally:  # start_run(run_id=...) ended the run FINISHED: it keeps its own status
            client.set_terminated(run_id, status=status)
    client.set_tag(run_id, MODEL_URI_TAG, info.model_uri)
