"""The trace writer's child processes: started as early as a run knows its store, kept between
the runs of one Python process (a notebook, the test suite), killed at its exit.

A light module on purpose: `llmflow run` starts the child before it imports anything heavy or
reads the experiment file, so that the child's imports (MLflow and its store: seconds, the
longest part of a small run) overlap the parent's.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import threading
from pathlib import Path

WRITER_MODULE = "llmflow.writer_process"

_idle: list[subprocess.Popen[bytes]] = []  # children between runs, ready for the next one
_idle_lock = threading.Lock()


def prestart(tracking_uri: str) -> None:
    """Start a child for the next run now, unless one is waiting already. It imports MLflow,
    and the store's modules for a sqlite URI, while this process carries on."""
    with _idle_lock:
        if not any(child.poll() is None for child in _idle):
            _idle.append(_spawn(tracking_uri))


def take_child(tracking_uri: str) -> subprocess.Popen[bytes]:
    with _idle_lock:
        while _idle:
            child = _idle.pop()
            if child.poll() is None:
                return child
            stop(child)
    return _spawn(tracking_uri)


def return_child(child: subprocess.Popen[bytes]) -> None:
    with _idle_lock:
        _idle.append(child)


def _spawn(tracking_uri: str) -> subprocess.Popen[bytes]:
    # the child finds llmflow where the parent found it, after the user's PYTHONPATH (which
    # comes first for every other package too, as in the parent); it is told the kind of store
    # only (a URI may hold credentials, which `ps` would show)
    package_root = str(Path(__file__).resolve().parents[2])
    search_path = os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), package_root]))
    kind = tracking_uri.partition(":")[0]
    return subprocess.Popen(
        [sys.executable, "-m", WRITER_MODULE, kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": search_path},
        start_new_session=os.name == "posix",
        creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
    )


def stop(child: subprocess.Popen[bytes]) -> None:
    """End a child that failed: its input ends, so it exits (killed after 5 s)."""
    for stream in (child.stdin, child.stdout):
        with contextlib.suppress(OSError):  # unsent bytes to a child that is gone
            if stream is not None:
                stream.close()
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@atexit.register
def _kill_idle_children() -> None:
    """An idle child holds nothing unwritten (it answered its run's end): it is killed, not
    waited for, since one started early may still be importing (a bad experiment file must
    exit at once)."""
    with _idle_lock:
        while _idle:
            child = _idle.pop()
            child.kill()
            with contextlib.suppress(KeyboardInterrupt):  # a last Ctrl-C while exiting
                child.wait()
