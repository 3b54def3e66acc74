"""The two places where the worker touches process-wide state after its start: OpenRun's
adoption of the parent's context (work_as_parent), and MLflow's retries around a store task
(store_retries)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from .._process import MLFLOW_RETRY_SETTINGS, adopt_environment
from ..providers.spec import ProviderSpec, use_added_providers

_parent_retries: dict[str, str] = {}  # the parent's own values of MLFLOW_RETRY_SETTINGS


def work_as_parent(cwd: str, environ: dict[str, str], providers: tuple[ProviderSpec, ...]) -> None:
    """The parent's working directory, environment (credentials, MLflow's settings) and added
    providers, which may have changed since this worker started (a worker kept between runs)."""
    with contextlib.suppress(OSError):  # a folder deleted since: only relative paths suffer
        os.chdir(cwd)
    _parent_retries.clear()
    _parent_retries.update({k: environ[k] for k in MLFLOW_RETRY_SETTINGS if k in environ})
    adopt_environment(environ)  # a trace's request gives up within seconds (_process.py)
    use_added_providers(providers)


@contextlib.contextmanager
def store_retries() -> Iterator[None]:
    """The retries the parent would have had for a store task (MLflow reads them per request);
    no trace is written meanwhile."""
    traces = {k: os.environ.get(k) for k in MLFLOW_RETRY_SETTINGS}
    for key in MLFLOW_RETRY_SETTINGS:
        os.environ.pop(key, None)
    os.environ.update(_parent_retries)
    try:
        yield
    finally:
        for key, value in traces.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
