"""The worker processes: started as early as a run knows its store, kept between the runs of one
Python process (a notebook, the test suite), killed at its exit.

A light module on purpose: `llmflow run` starts a worker before it imports anything heavy or
reads the experiment file, so that the worker's imports (MLflow and its store: seconds, the
longest part of a small run) overlap the parent's.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

WORKER_MODULE = "llmflow.worker"


@dataclass
class WorkerProcess:
    """One worker: its process, and the two ends of its pipes (framed by Connection)."""

    process: subprocess.Popen[bytes]
    requests: Connection  # to the worker
    replies: Connection  # from it
    greeted: bool = False  # its Hello was read and its protocol checked

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.kill()


_idle: list[WorkerProcess] = []  # workers between runs, ready for the next one
_idle_lock = threading.Lock()


def prestart(tracking_uri: str) -> None:
    """Start a worker for the next run now, unless one is waiting already. It imports MLflow,
    and the store's modules for a sqlite URI, while this process carries on."""
    with _idle_lock:
        if not any(worker.alive() for worker in _idle):
            _idle.append(_spawn(tracking_uri))


def take(tracking_uri: str) -> WorkerProcess:
    with _idle_lock:
        while _idle:
            worker = _idle.pop()
            if worker.alive():
                return worker
            stop(worker)
    return _spawn(tracking_uri)


def give_back(worker: WorkerProcess) -> None:
    with _idle_lock:
        _idle.append(worker)


def _spawn(tracking_uri: str) -> WorkerProcess:
    # the worker finds llmflow where the parent found it, after the user's PYTHONPATH (which
    # comes first for every other package too, as in the parent); it is told the kind of store
    # only (a URI may hold credentials, which `ps` would show)
    package_root = str(Path(__file__).resolve().parents[2])
    search_path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), package_root]))
    kind = tracking_uri.partition(":")[0]
    process = subprocess.Popen(
        [sys.executable, "-m", WORKER_MODULE, kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": search_path},
        start_new_session=os.name == "posix",
    )
    assert process.stdin is not None and process.stdout is not None
    requests = Connection(os.dup(process.stdin.fileno()), readable=False)
    replies = Connection(os.dup(process.stdout.fileno()), writable=False)
    process.stdin.close()
    process.stdout.close()
    return WorkerProcess(process, requests, replies)


def stop(worker: WorkerProcess) -> None:
    """End a worker that failed: its input ends, so it exits (killed after 5 s)."""
    for end in (worker.requests, worker.replies):
        with contextlib.suppress(OSError):  # unsent bytes to a worker that is gone
            end.close()
    try:
        worker.process.wait(5)
    except subprocess.TimeoutExpired:
        worker.process.kill()
        worker.process.wait()


@atexit.register
def _kill_idle_workers() -> None:
    """An idle worker holds nothing unwritten (it answered its run's end): it is killed, not
    waited for, since one started early may still be importing (a bad experiment file must
    exit at once)."""
    with _idle_lock:
        while _idle:
            worker = _idle.pop()
            worker.kill()
            with contextlib.suppress(KeyboardInterrupt):  # a last Ctrl-C while exiting
                worker.process.wait()
