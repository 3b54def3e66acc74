"""The worker's entry point (`python -m llmflow.worker STORE_KIND`, started by pool.py): its
process prepared (_process.prepare_worker_process: MLflow's settings and retries, the lean
imports), Ctrl-C left to the parent, MLflow imported at once, stdout kept for the replies.
The rest of what the worker does to process-wide state is in context.py."""

from __future__ import annotations

import os
import signal
import sys
from multiprocessing.connection import Connection

from .._process import LeanImportFailed, gc_paused, prepare_worker_process, restart_without_tricks


def main() -> None:
    prepare_worker_process()
    from .server import serve  # after: its imports reach MLflow's, which the above prepares

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
