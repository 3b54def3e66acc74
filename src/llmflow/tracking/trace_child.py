"""The trace writer's child (`python -m llmflow.writer_process`): its loop, which gathers the
parent's messages (trace_writer.py says which) into batches of calls and writes each batch's
traces and scores; the run being written; and the wait for a tracking server that went away.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import IO, Any, Protocol

from .._process import MLFLOW_RETRY_SETTINGS as _RETRY_SETTINGS
from .._process import adopt_environment, gc_paused, server_wait_s
from ..errors import TrackingError
from ..plan import Variant
from ..providers.spec import ProviderSpec, use_added_providers
from ..redact import one_line, redact_url
from ..scoring import CaseChecks, Score, score_record
from ..scoring.checks import load_libraries
from ..scoring.guard import CheckGuard
from . import mlflow_compat
from .mlflow_import import import_mlflow
from .span_ingestion import TraceServer, trace_server
from .trace_batch import TraceBatch
from .trace_writer import END
from .traces import BATCH, TraceJob

logger = logging.getLogger(__name__)

_GATHER_S = 0.05  # after a call arrives, wait this long for more to share its batch
# a server that went away (restarted, redeployed): how long the writer waits for it to come
# back, as MLflow's client itself retries its other requests for about 2 minutes
# the scores of each call, by variant id, then by (case_id, repeat)
ScoresByVariant = dict[str, dict[tuple[str, int], tuple[Score, ...]]]
# batches in flight at once to a server: its workers ingest them in parallel (measured here,
# 400 traces into `mlflow server --workers 4` on PostgreSQL: 8.8 s with one writer, 5.0 s with 4)
_WRITERS = 4


class Tasks(Protocol):
    """What the child does when the parent asks ("do" and "now"): writer_process.StoreTasks."""

    def answer(self, task: str, args: tuple[Any, ...]) -> tuple[str, Any]: ...


def serve(messages: IO[bytes], replies: IO[bytes], tasks: Callable[[ChildState], Tasks]) -> None:
    """The child's loop, one run after another: gather what has arrived (up to a batch), write
    it, repeat; at each run's end, reply with the traces written. `tasks`
    makes what answers the parent's store tasks, given the traces' state."""
    inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    lock = threading.Lock()  # replies come from the main loop, the writers and "now" tasks

    def reply(message: tuple[Any, ...]) -> None:
        with lock:
            _reply(replies, message)

    state = ChildState(notify=reply)
    answers = tasks(state)

    def now(message: tuple[Any, ...]) -> None:
        _, task, args = message
        threading.Thread(target=lambda: reply(("now", *answers.answer(task, args)))).start()

    threading.Thread(target=_receive_all, args=(messages, inbox, now), daemon=True).start()
    pool = ThreadPoolExecutor(_WRITERS, thread_name_prefix="llmflow-write")
    writing: set[Future[None]] = set()
    while True:
        # all writers busy: wait, and the calls arriving meanwhile make the next batch bigger
        while len(writing) >= state.writers:
            writing = wait(writing, return_when=FIRST_COMPLETED).not_done
        batch, ended = _gather(inbox)
        task = batch.pop() if batch and batch[-1][0] == "do" else None
        jobs = [job for message in batch if (job := state.take(message)) is not None]
        if jobs:
            writing.add(pool.submit(state.write, jobs))
        if task is not None or ended:  # a task sees every trace submitted before it
            wait(writing)
            writing = set()
        if task is not None:
            with _store_retries():  # no trace is being written meanwhile
                reply(answers.answer(task[1], task[2]))
        if ended:
            reply(("end", state.written, state.failure_reason))


def _reply(replies: IO[bytes], reply: tuple[Any, ...]) -> None:
    try:
        data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # noqa: BLE001 - a value that cannot cross: the asker hears why
        error = TrackingError(f"the trace writer cannot send its answer: {one_line(e)}")
        data = pickle.dumps(("now", "raised", error) if reply[0] == "now" else ("raised", error))
    try:
        replies.write(data)
        replies.flush()
    except OSError:  # the parent is gone
        os._exit(1)


def _gather(inbox: queue.SimpleQueue[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]], bool]:
    """Wait for a message, then take those that follow within _GATHER_S of each other, up to a
    batch of calls or the end of a run (then True)."""
    batch: list[tuple[Any, ...]] = []
    calls = 0
    message = inbox.get()
    while message != END:
        batch.append(message)
        calls += message[0] == "call"
        if calls == BATCH or message[0] == "do":
            return batch, False
        try:
            message = inbox.get(timeout=_GATHER_S)
        except queue.Empty:
            return batch, False
    return batch, True


class ChildState:
    """The run being written, and a client per store seen so far."""

    def __init__(self, notify: Callable[[tuple[Any, ...]], None] = lambda reply: None) -> None:
        self.clients: dict[str, Any] = {}
        self.servers: dict[str, TraceServer] = {}  # what each store takes (its release)
        self.tracking_uri = ""
        self.experiment_id = ""
        self.variants: dict[str, Variant] = {}
        self.checks: dict[str, CaseChecks] | None = None
        self.scores: ScoresByVariant = {}  # this run's
        self.guard = CheckGuard()  # this run's checks, bounded (scoring/guard.py)
        self.written = 0
        self.failure_reason = ""
        self.away_since: float | None = None  # when the server stopped answering
        self.gone = False  # away past the bound: this run writes nothing more
        self.unbatched: set[str] = set()  # servers found without batched span ingestion
        self.writers = 1  # batches written at once: _WRITERS to a server, 1 to a local store
        self._lock = threading.Lock()  # the writers share the counts and the server's state
        self._notify = notify  # a reply to the parent, mid-run

    def take(self, message: tuple[Any, ...]) -> TraceJob | None:
        """Apply an "open" or "begin"; a "call" becomes the TraceJob returned."""
        kind = message[0]
        if kind == "open":
            _, self.tracking_uri, check_types, *context = message
            if context:
                _work_as_parent(*context)
            self.written, self.failure_reason, self.away_since = 0, "", None
            self.gone, self.scores, self.guard = False, {}, CheckGuard()
            remote = self.tracking_uri.startswith(("http://", "https://"))
            self.writers = _WRITERS if remote else 1  # sqlite takes one writer at a time
            with gc_paused():
                import_mlflow(self.tracking_uri)
                load_libraries(check_types)
        elif kind == "begin":
            _, self.experiment_id, self.variants, self.checks = message
        else:
            _, record, variant_id, run_id = message
            checks = (self.checks or {}).get(record.case_id)
            scores: tuple[Score, ...] = ()
            if checks is not None:
                scores = tuple(score_record(record, checks, self.guard))
                self.scores.setdefault(variant_id, {})[(record.case_id, record.repeat)] = scores
            return TraceJob(record, self.variants[variant_id], run_id, scores)
        return None

    def write(self, jobs: list[TraceJob]) -> None:
        """Write one batch (from one of `writers` threads at once), waiting for a server that
        went away."""
        if not jobs:
            return
        if self.gone:
            self._failed(jobs, None)
            return
        try:
            batch = TraceBatch(self.experiment_id, jobs)
        except Exception as e:  # noqa: BLE001 - a span that cannot be built: failed, with its reason
            self._failed(jobs, e)
            return
        pause = 1.0
        while True:
            try:
                self._write_once(batch)
            except Exception as e:  # a lost trace must not lose the run: counted and reported
                if not self._wait_for_server(jobs, e, pause):
                    return
            else:
                with self._lock:
                    self.written += len(jobs)
                    self.away_since = None
                return
            time.sleep(pause)
            pause = min(2 * pause, 10.0)

    def _wait_for_server(self, jobs: list[TraceJob], error: Exception, pause: float) -> bool:
        """Whether to try the batch again after `pause`; if not, it is counted as failed."""
        if not _server_away(error):
            self._failed(jobs, error)
            return False
        with self._lock:
            if self.away_since is None:
                self.away_since = time.monotonic()
            # one wait for the whole outage, not one per batch
            over = self.gone or time.monotonic() + pause >= self.away_since + server_wait_s()
        if over:
            self._give_up(jobs, error)
        return not over

    def _write_once(self, batch: TraceBatch) -> None:
        with self._lock:
            if self.tracking_uri not in self.clients:
                from mlflow import MlflowClient

                self.clients[self.tracking_uri] = MlflowClient(self.tracking_uri)
            client = self.clients[self.tracking_uri]
            server = self.servers.get(self.tracking_uri)
        if server is None:  # asked outside the lock: a server that does not answer takes 3 s
            server = trace_server(client)
            with self._lock:
                self.servers[self.tracking_uri] = server
        if not batch.spans_logged:
            self._log_spans(client, batch, server)
        batch.finish(client, server)

    def _log_spans(self, client: Any, batch: TraceBatch, server: TraceServer) -> None:
        """Batched; one per trace, with its info, on a server without batched ingestion (MLflow
        before 3.4), found out once per tracking URI."""
        if self.tracking_uri not in self.unbatched:
            if batch.log_spans(client, server):
                return
            with self._lock:
                first = self.tracking_uri not in self.unbatched
                self.unbatched.add(self.tracking_uri)
            if first:
                logger.debug(
                    "%s has no batched span ingestion (MLflow < 3.4): one request per trace",
                    redact_url(self.tracking_uri),
                )
        batch.upload_one_by_one(client)

    def _give_up(self, jobs: list[TraceJob], error: Exception) -> None:
        """The server stayed away past the bound: the parent hears it at once (it stops sending
        calls), and the rest of this run's traces fail without a request each."""
        self._failed(jobs, error)
        with self._lock:
            first, self.gone = not self.gone, True
        if first:
            self._notify(("gone", self.failure_reason))

    def _failed(self, jobs: list[TraceJob], error: Exception | None) -> None:
        logger.debug("could not write %d trace(s)", len(jobs), exc_info=error)
        with self._lock:
            if not self.failure_reason and error is not None:
                self.failure_reason = one_line(error)


def _work_as_parent(cwd: str, environ: dict[str, str], providers: tuple[ProviderSpec, ...]) -> None:
    """The parent's working directory, environment (credentials, MLflow's settings) and added
    providers, which may have changed since this child started."""
    with contextlib.suppress(OSError):  # a folder deleted since: only relative paths suffer
        os.chdir(cwd)
    _parent_retries.clear()
    _parent_retries.update({k: environ[k] for k in _RETRY_SETTINGS if k in environ})
    adopt_environment(environ)  # a trace's request gives up within seconds (_process.py)
    use_added_providers(providers)


_parent_retries: dict[str, str] = {}  # the parent's own values of _RETRY_SETTINGS


@contextlib.contextmanager
def _store_retries() -> Iterator[None]:
    """The retries the parent would have had for a store task (MLflow reads them per request)."""
    traces = {k: os.environ.get(k) for k in _RETRY_SETTINGS}
    for key in _RETRY_SETTINGS:
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


def _server_away(error: BaseException) -> bool:
    """The server did not answer: MLflow's version probe found nobody, or a request was refused
    (nothing reached the server, so a retry writes nothing twice). The probe does not retry, and
    MLflow caches its "unknown" answer for the life of the process: forget it, so that a server
    back up is asked again."""
    if mlflow_compat.version_unknown(error):
        mlflow_compat.forget_server_version()
        return True
    return _refused(error)


def _refused(error: BaseException | None) -> bool:
    """A connection refused, or only 429/503 answers, somewhere in the chain (MLflow re-raises
    requests' error as its own, with the original as the context): the server took nothing. A
    timeout is not: the request may have been written."""
    from requests import exceptions as http

    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, http.RetryError):
            return any(f"too many {code} error responses" in str(error) for code in (429, 503))
        if isinstance(error, http.ConnectionError) and not isinstance(error, http.Timeout):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def _receive_all(
    messages: IO[bytes],
    inbox: queue.SimpleQueue[tuple[Any, ...]],
    now: Callable[[tuple[Any, ...]], None],
) -> None:
    in_run = False
    try:
        while True:
            message = pickle.load(messages)
            in_run = message != END
            if message[0] == "now":
                now(message)
            else:
                inbox.put(message)
    except Exception:  # input ended: between runs, the parent is done; within one, it died
        os._exit(1 if in_run else 0)


def start_child(argv: list[str]) -> tuple[IO[bytes], IO[bytes]]:
    """The child's set-up (writer_process.main): Ctrl-C left to the parent, MLflow imported at
    once (argv: the kind of store), stdout kept for the replies; its input and its replies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends the run, then closes the writer
    store_kind = argv[0] if argv else ""
    with gc_paused():  # at once: the parent may still be reading its experiment file
        import_mlflow(f"{store_kind}:")
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not mix into the replies
    return sys.stdin.buffer, replies
