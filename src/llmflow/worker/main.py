"""The worker's entry point (`python -m llmflow.worker STORE_KIND`, started by pool.py): its
process prepared (_process.prepare_worker_process: MLflow's settings and retries, the lean
imports), Ctrl-C left to the parent, MLflow imported at once, stdout kept for the replies.
Besides, the worker touches process-wide state in two places, both here: OpenRun's adoption of
the parent's context (work_as_parent) and the retries of a store task (store_retries)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection

from .._process import MLFLOW_RETRY_SETTINGS, adopt_environment, gc_paused
from ..providers.spec import ProviderSpec, use_added_providers

_parent_retries: dict[str, str] = {}  # the parent's own values of MLFLOW_RETRY_SETTINGS


def main() -> None:
    from .._process import LeanImportFailed, prepare_worker_process, restart_without_tricks

    prepare_worker_process()
    from .server import serve

    try:
        requests, replies = start(sys.argv[1:])
    except LeanImportFailed:
        restart_without_tricks()
    serve(requests, replies)


def start(argv: list[str]) -> tuple[Connection, Connection]:
    """Ctrl-C left to the parent (it ends the runs, then closes the worker), MLflow imported at
    once (argv: the kind of store) while the parent may still be reading its experiment file;
    the ends of the worker's pipes to the parent, stdout kept for them."""
    from ..tracking.mlflow_import import import_mlflow

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    store_kind = argv[0] if argv else ""
    with gc_paused():
        import_mlflow(f"{store_kind}:")
    requests = Connection(os.dup(sys.stdin.fileno()), writable=False)
    replies = Connection(os.dup(sys.stdout.fileno()), readable=False)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not mix into replies
    return requests, replies


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
