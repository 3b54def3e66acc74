"""The trace writer: one MLflow trace per call, written by a child process while the calls run.

Why a process and not a thread: MLflow's store spends about 2 ms of Python CPU per trace. In a
thread, that CPU competes for the GIL with the event loop that times the calls. Measured here
(1,000 calls at concurrency 16 against a 100 ms server), a writer thread stretched the recorded
p95 latency from 154 to 178 ms and, against a 0 ms server, made the run 2x slower than the raw SDK.
In a child process the writes run on another core and never touch the timing of a call.

The child is `python -m llmflow.tracking.trace_writer`, a fresh interpreter (no fork of a process
with threads, no re-import of the caller's script). Importing MLflow takes it a second or two, so
a child outlives its run and serves the next run of the same Python process (a notebook, the
test suite). It is in a session of its own: Ctrl-C reaches only the parent, which ends the runs
and then closes the writer.

Its stdin carries pickled messages, per run: ("open", tracking_uri), ("begin", experiment_id,
variants, checks) once the runs exist, ("call", record, variant_id, run_id) per finished call, then
("end",), answered on stdout by a line with the number of traces written and, when some could
not be written, the first reason (tab-separated). If the parent dies
mid-run (kill -9), the input ends without ("end",) and the child exits at once, as a thread would
have died with it: `llmflow run --resume` then writes every missing trace from the journal.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ..plan import Variant
from ..redact import one_line
from ..scoring import CaseChecks, score_record
from ..types import CallRecord
from .traces import BATCH, TraceJob, write_traces

logger = logging.getLogger(__name__)

_GATHER_S = 0.05  # after a call arrives, wait this long for more to share its batch
# a server that went away (restarted, redeployed): how long a batch waits for it to come back;
# MLflow's client itself retries its other requests for about 2 minutes
_SERVER_AWAY_S = 60.0
_VERSION_UNKNOWN = "could not identify MLflow server version"  # MLflow's words, RestStore
_END = ("end",)


class TraceWriter:
    """Accepts records from any thread; `close()` returns once every trace is written."""

    def __init__(self, tracking_uri: str) -> None:
        self._child = _take_child()
        self._outbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._outbox.put(("open", tracking_uri))
        # sends from its own thread: a full pipe must never block the event loop
        self._sender = threading.Thread(target=self._send_all, name="llmflow-traces", daemon=True)
        self._sender.start()
        self._closed = False
        self.submitted = 0
        self.written = 0
        self.failure_reason: str | None = None  # why the first trace that failed did

    def begin(
        self,
        experiment_id: str,
        variants: Iterable[Variant],
        checks: dict[str, CaseChecks] | None = None,
    ) -> None:
        """Where the traces go, and what each case is checked with (the child scores each call
        and writes its scores as assessments, off the calls' path); before the first `submit`,
        once the runs exist."""
        self._outbox.put(("begin", experiment_id, {v.id: v for v in variants}, checks))

    def submit(self, record: CallRecord, variant: Variant, run_id: str) -> None:
        self.submitted += 1
        self._outbox.put(("call", record, variant.id, run_id))

    def close(self) -> None:
        """Wait for every trace; what the child did not confirm as written counts as failed.
        Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._outbox.put(_END)
        self._sender.join()
        assert self._child.stdout is not None
        reply = self._child.stdout.readline().decode(errors="replace").strip()
        written, _, reason = reply.partition("\t")
        if written.isdigit():
            self.written, self.failure_reason = int(written), reason or None
            _return_child(self._child)
        else:
            self.failure_reason = "the trace writer process exited early"
            _stop(self._child)

    def abandon(self) -> None:
        """Stop the child now (a user gave up waiting): what it had not written stays
        unwritten, and `llmflow run --resume` writes it."""
        self._closed = True
        self._child.kill()

    @property
    def failed(self) -> int:
        """Traces submitted but not confirmed as written (all of them until `close()`)."""
        return self.submitted - self.written

    def _send_all(self) -> None:
        stdin = self._child.stdin
        assert stdin is not None
        try:
            while True:
                message = self._outbox.get()
                pickle.dump(message, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
                if message == _END:
                    return
        except OSError:  # the child is gone; close() counts what it never wrote
            pass


_idle: list[subprocess.Popen[bytes]] = []  # children between runs, ready for the next one
_idle_lock = threading.Lock()


def _take_child() -> subprocess.Popen[bytes]:
    with _idle_lock:
        while _idle:
            child = _idle.pop()
            if child.poll() is None:
                return child
            _stop(child)
    # the child imports this very llmflow, wherever the parent found it
    package_root = str(Path(__file__).resolve().parents[2])
    search_path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", __name__],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": search_path},
        start_new_session=os.name == "posix",
        creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
    )


def _return_child(child: subprocess.Popen[bytes]) -> None:
    with _idle_lock:
        _idle.append(child)


def _stop(child: subprocess.Popen[bytes]) -> None:
    """End a child between runs (its input ends, so it exits) or one that failed."""
    for stream in (child.stdin, child.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:  # unsent bytes to a child that is gone
            pass
    try:
        child.wait(5)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@atexit.register
def _stop_idle_children() -> None:
    with _idle_lock:
        while _idle:
            _stop(_idle.pop())


# --- the child ---------------------------------------------------------------------------------


def serve(messages: IO[bytes], replies: IO[str]) -> None:
    """The child's loop, one run after another: gather what has arrived (up to a batch), write
    it, repeat; at each run's end, reply with the number of traces written."""
    inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    threading.Thread(target=_receive_all, args=(messages, inbox), daemon=True).start()
    state = _ChildState()
    while True:
        batch, ended = _gather(inbox)
        state.write([job for message in batch if (job := state.take(message)) is not None])
        if ended:
            try:
                replies.write(f"{state.written}\t{state.failure_reason}\n")
                replies.flush()
            except OSError:  # the parent is gone
                os._exit(1)


def _gather(inbox: queue.SimpleQueue[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], bool]:
    """Wait for a message, then take those that follow within _GATHER_S of each other, up to a
    batch of calls or the end of a run (then True)."""
    batch: list[tuple[Any, ...]] = []
    calls = 0
    message = inbox.get()
    while message != _END:
        batch.append(message)
        calls += message[0] == "call"
        if calls == BATCH:
            return batch, False
        try:
            message = inbox.get(timeout=_GATHER_S)
        except queue.Empty:
            return batch, False
    return batch, True


class _ChildState:
    """The run being written, and a client per store seen so far."""

    def __init__(self) -> None:
        self.clients: dict[str, Any] = {}
        self.tracking_uri = ""
        self.experiment_id = ""
        self.variants: dict[str, Variant] = {}
        self.checks: dict[str, CaseChecks] | None = None
        self.written = 0
        self.failure_reason = ""
        self.away_since: float | None = None  # when the server stopped answering

    def take(self, message: tuple[Any, ...]) -> TraceJob | None:
        """Apply an "open" or "begin"; a "call" becomes the TraceJob returned."""
        kind = message[0]
        if kind == "open":
            _, self.tracking_uri = message
            self.written, self.failure_reason, self.away_since = 0, "", None
            _import_mlflow(self.tracking_uri)
        elif kind == "begin":
            _, self.experiment_id, self.variants, self.checks = message
        else:
            _, record, variant_id, run_id = message
            checks = (self.checks or {}).get(record.case_id)
            scores = tuple(score_record(record, checks)) if checks is not None else ()
            return TraceJob(record, self.variants[variant_id], run_id, scores)
        return None

    def write(self, jobs: list[TraceJob]) -> None:
        if not jobs:
            return
        pause = 1.0
        while True:
            try:
                self._write_once(jobs)
                self.written += len(jobs)
                self.away_since = None
                return
            except Exception as e:  # a lost trace must not lose the run: counted and reported
                if not _server_away(e):
                    self._failed(jobs, e)
                    return
                if self.away_since is None:
                    self.away_since = time.monotonic()
                # one wait for the whole outage, not one per batch
                if time.monotonic() + pause >= self.away_since + _SERVER_AWAY_S:
                    self._failed(jobs, e)
                    return
            time.sleep(pause)
            pause = min(2 * pause, 10.0)

    def _write_once(self, jobs: list[TraceJob]) -> None:
        if self.tracking_uri not in self.clients:
            from mlflow import MlflowClient

            self.clients[self.tracking_uri] = MlflowClient(self.tracking_uri)
        write_traces(self.clients[self.tracking_uri], self.experiment_id, jobs)

    def _failed(self, jobs: list[TraceJob], error: Exception) -> None:
        logger.debug("could not write %d trace(s)", len(jobs), exc_info=error)
        if not self.failure_reason:
            self.failure_reason = one_line(error)


def _import_mlflow(tracking_uri: str) -> None:
    """MLflow's import (seconds) now, while the parent opens the store, rather than when the
    first call arrives. The store itself is opened at the first trace, once the parent has
    made it: two processes creating one new sqlite file would collide."""
    import mlflow.tracing.utils  # noqa: F401

    if tracking_uri.startswith("sqlite:"):
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


def _server_away(error: Exception) -> bool:
    """A server that did not answer MLflow's version probe, made before any span is sent (so a
    retry writes nothing twice). The probe does not retry, and MLflow caches its "unknown"
    answer for the life of the process: forget it, so that a server back up is asked again."""
    if not isinstance(error, NotImplementedError) or _VERSION_UNKNOWN not in str(error):
        return False
    from mlflow.store.tracking.rest_store import RestStore

    cached = getattr(RestStore._get_server_version, "cache_clear", None)
    if cached is not None:
        cached()
    return True


def _receive_all(messages: IO[bytes], inbox: queue.SimpleQueue[tuple[Any, ...]]) -> None:
    in_run = False
    try:
        while True:
            message = pickle.load(messages)
            in_run = message != _END
            inbox.put(message)
    except Exception:  # input ended: between runs, the parent is done; within one, it died
        os._exit(1 if in_run else 0)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends the run, then closes the writer
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not mix into the replies
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
