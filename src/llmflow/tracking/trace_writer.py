"""The trace writer: one MLflow trace per call, written by a child process while the calls run.

Why a process and not a thread: MLflow's store spends about 2 ms of Python CPU per trace. In a
thread, that CPU competes for the GIL with the event loop that times the calls. Measured here
(1,000 calls at concurrency 16 against a 100 ms server), a writer thread stretched the recorded
p95 latency from 154 to 178 ms and, against a 0 ms server, made the run 2x slower than the raw SDK.
In a child process the writes run on another core and never touch the timing of a call.

The child is `python -m llmflow.writer_process`, a fresh interpreter (no fork of a process with
threads, no re-import of the caller's script), which runs `serve` below. Importing MLflow takes
it a second or two, so it is started as early as possible and outlives its run to serve the next
run of the same Python process (a notebook, the test suite): writer_pool.py. It is in a session
of its own: Ctrl-C reaches only the parent, which ends the runs and then closes the writer.

The child also keeps the run's MLflow store, so that the parent never imports MLflow
(store_child.py, writer_process.py): the parent asks it to open the store, create the runs and,
once the calls are in, finish them.

Its stdin carries pickled messages, per run: ("open", tracking_uri, check_types, cwd, environ,
providers), ("begin", experiment_id, variants, checks) once the runs exist, ("call", record,
variant_id, run_id) per finished call, ("do", task, args) for each store task (done once every
trace before it is written; answered ("done", value) or ("raised", error)), then ("end",).
("now", task, args) is done at once, beside whatever runs (the runs are ended while a user
abandons the wait). At the run's end its stdout answers ("end", written, reason): the number of
traces written and the first reason one could not be. The scores it gave each call stay in the
child, where the finishing uses them (the parent never scores, nor imports the checks'
libraries: sacrebleu for chrF).
A tracking server that stops answering is waited for (server_wait_s(), 2 minutes by default);
past that, the child says ("gone", reason) at once, mid-run, so that the parent stops sending
calls. If the parent dies mid-run (kill -9), the input ends without ("end",) and the child exits
at once, as a thread would have died with it: `llmflow run --resume` then writes every missing
trace from the journal.
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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import IO, Any, Protocol

from ..errors import TrackingError
from ..gc_pause import gc_paused
from ..plan import Variant
from ..providers.spec import ProviderSpec, added_providers, use_added_providers
from ..redact import one_line, redact_url
from ..scoring import CaseChecks, Score, score_record
from ..scoring.checks import load_libraries
from ..types import CallRecord
from .traces import BATCH, TraceJob, build_span, log_spans, upload_trace
from .writer_pool import return_child, stop, take_child

logger = logging.getLogger(__name__)

_GATHER_S = 0.05  # after a call arrives, wait this long for more to share its batch
# a server that went away (restarted, redeployed): how long the writer waits for it to come
# back, as MLflow's client itself retries its other requests for about 2 minutes
_SERVER_AWAY_S = 120.0
SERVER_WAIT_ENV = "LLMFLOW_SERVER_WAIT_S"  # overrides _SERVER_AWAY_S (tests set it short)
_VERSION_UNKNOWN = "could not identify MLflow server version"  # MLflow's words, RestStore
_END = ("end",)
# the scores of each call, by variant id, then by (case_id, repeat)
ScoresByVariant = dict[str, dict[tuple[str, int], tuple[Score, ...]]]
# batches in flight at once to a server: its workers ingest them in parallel (measured here,
# 400 traces into `mlflow server --workers 4` on PostgreSQL: 8.8 s with one writer, 5.0 s with 4)
_WRITERS = 4


class TraceWriter:
    """Accepts records from any thread; `close()` returns once every trace is written."""

    def __init__(self, tracking_uri: str, check_types: Iterable[str] = ()) -> None:
        """`check_types`: the checks the calls will be scored with, whose libraries the child
        loads while the parent is still opening the store."""
        self._child = take_child(tracking_uri)
        self._outbox: queue.SimpleQueue[tuple[Any, ...] | bytes] = queue.SimpleQueue()
        kinds = tuple(sorted(set(check_types)))
        # a child kept from an earlier run works where this one does, with its environment
        # and the providers registered here at run time
        context = (os.getcwd(), dict(os.environ), added_providers())
        self._outbox.put(("open", tracking_uri, kinds, *context))
        # sends from its own thread: a full pipe must never block the event loop
        self._sender = threading.Thread(target=self._send_all, name="llmflow-traces", daemon=True)
        self._sender.start()
        self._replies: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._answers_now: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._asking = threading.Lock()  # one task at a time: answers come back in order
        self._child_gone = False
        self._gone_callbacks: list[Callable[[], None]] = []
        self._closed = False
        self.submitted = 0
        self.written = 0
        self.failure_reason: str | None = None  # why the first trace that failed did
        self.server_gone: str | None = None  # why, once the server stayed away past the bound
        # the replies' reader starts once every attribute it touches exists
        threading.Thread(target=self._read_replies, name="llmflow-traces-in", daemon=True).start()

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

    def ask(self, task: str, *args: Any) -> Any:
        """Have the child do a store task (writer_process.StoreTasks) once every trace submitted
        before is written; its value, or its exception raised here."""
        with self._asking:
            return self._answer(("do", task, args), self._answers)

    def ask_now(self, task: str, *args: Any) -> Any:
        """A store task done at once, beside any task or trace the child is busy with."""
        return self._answer(("now", task, args), self._answers_now)

    def _answer(
        self, message: tuple[Any, ...], answers: queue.SimpleQueue[tuple[Any, ...] | None]
    ) -> Any:
        if self._closed or self._child_gone:
            raise TrackingError("the trace writer process has exited: the store is out of reach")
        try:  # here, not in the sender: what cannot cross is this caller's error
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - any value that cannot be pickled
            reason = f"cannot send {message[1]} to the trace writer: {one_line(e)}"
            raise TrackingError(reason) from e
        self._outbox.put(data)
        answer = answers.get()
        if answer is None:
            raise TrackingError("the trace writer process exited early")
        kind, value = answer
        if kind == "raised":
            raise value
        return value

    def on_server_gone(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from another thread) once the tracking server has stayed away past
        server_wait_s(): this run's remaining traces will not be written."""
        self._gone_callbacks.append(callback)
        if self.server_gone is not None:
            callback()

    def close(self) -> None:
        """Wait for every trace; what the child did not confirm as written counts as failed.
        Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._outbox.put(_END)
        self._sender.join()
        reply = self._replies.get()
        if reply is not None:
            _, self.written, reason = reply
            self.failure_reason = reason or None
            return_child(self._child)
        else:
            self.failure_reason = "the trace writer process exited early"
            stop(self._child)

    def drain(self) -> None:
        """Wait until every trace submitted so far is written; `written` and `failure_reason`
        then say how it went. The child stays with this run (its store tasks) until close()."""
        try:
            self.written, reason = self.ask("traces_written")
        except TrackingError:
            reason = "the trace writer process exited early"
        self.failure_reason = reason or None

    def abandon(self) -> None:
        """Stop the child now (a user gave up waiting): what it had not written stays
        unwritten, and `llmflow run --resume` writes it."""
        self._closed = True
        self._child.kill()

    @property
    def failed(self) -> int:
        """Traces submitted but not confirmed as written (all of them until `close()`)."""
        return self.submitted - self.written

    def _read_replies(self) -> None:
        """The child's replies until the one to this run's end (then the child is free for
        another run and another reader); "gone" is passed on as it comes, answers to tasks to
        the one asking."""
        assert self._child.stdout is not None
        while True:
            try:
                reply = pickle.load(self._child.stdout)
            except Exception:  # noqa: BLE001 - the child exited: close() counts what is unwritten
                reply = None
            if reply is None:
                self._child_gone = True
                for waiting in (self._answers, self._answers_now, self._replies):
                    waiting.put(None)
                return
            kind = reply[0]
            if kind == "gone":
                self.server_gone = reply[1]
                for callback in self._gone_callbacks:
                    callback()
            elif kind == "now":
                self._answers_now.put(reply[1:])
            elif kind in ("done", "raised"):
                self._answers.put(reply)
            else:
                self._replies.put(reply)
                return

    def _send_all(self) -> None:
        stdin = self._child.stdin
        assert stdin is not None
        try:
            while True:
                message = self._outbox.get()
                if isinstance(message, bytes):  # a task, pickled by its caller
                    stdin.write(message)
                else:
                    try:
                        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                    except Exception:  # noqa: BLE001 - a call that cannot be sent is unwritten
                        logger.debug("cannot send a %s message", message[0], exc_info=True)
                        continue
                    stdin.write(data)
                stdin.flush()
                if message == _END:
                    return
        except OSError:  # the child is gone; close() counts what it never wrote
            pass


# --- the child ---------------------------------------------------------------------------------


class Tasks(Protocol):
    """What the child does when the parent asks ("do" and "now"): writer_process.StoreTasks."""

    def answer(self, task: str, args: tuple[Any, ...]) -> tuple[str, Any]: ...


def serve(messages: IO[bytes], replies: IO[bytes], tasks: Callable[[_ChildState], Tasks]) -> None:
    """The child's loop, one run after another: gather what has arrived (up to a batch), write
    it, repeat; at each run's end, reply with the traces written. `tasks`
    makes what answers the parent's store tasks, given the traces' state."""
    inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    lock = threading.Lock()  # replies come from the main loop, the writers and "now" tasks

    def reply(message: tuple[Any, ...]) -> None:
        with lock:
            _reply(replies, message)

    state = _ChildState(notify=reply)
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
    while message != _END:
        batch.append(message)
        calls += message[0] == "call"
        if calls == BATCH or message[0] == "do":
            return batch, False
        try:
            message = inbox.get(timeout=_GATHER_S)
        except queue.Empty:
            return batch, False
    return batch, True


class _ChildState:
    """The run being written, and a client per store seen so far."""

    def __init__(self, notify: Callable[[tuple[Any, ...]], None] = lambda reply: None) -> None:
        self.clients: dict[str, Any] = {}
        self.tracking_uri = ""
        self.experiment_id = ""
        self.variants: dict[str, Variant] = {}
        self.checks: dict[str, CaseChecks] | None = None
        self.scores: ScoresByVariant = {}  # this run's
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
            self.gone, self.scores = False, {}
            remote = self.tracking_uri.startswith(("http://", "https://"))
            self.writers = _WRITERS if remote else 1  # sqlite takes one writer at a time
            with gc_paused():
                _import_mlflow(self.tracking_uri)
                load_libraries(check_types)
        elif kind == "begin":
            _, self.experiment_id, self.variants, self.checks = message
        else:
            _, record, variant_id, run_id = message
            checks = (self.checks or {}).get(record.case_id)
            scores: tuple[Score, ...] = ()
            if checks is not None:
                scores = tuple(score_record(record, checks))
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
            batch = _Batch(self.experiment_id, jobs)
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

    def _write_once(self, batch: _Batch) -> None:
        with self._lock:
            if self.tracking_uri not in self.clients:
                from mlflow import MlflowClient

                self.clients[self.tracking_uri] = MlflowClient(self.tracking_uri)
            client = self.clients[self.tracking_uri]
        if not batch.spans_logged:
            self._log_spans(client, batch)
            batch.spans_logged = True
        batch.finish(client)

    def _log_spans(self, client: Any, batch: _Batch) -> None:
        """One request for the batch; one per trace on a server without batched ingestion
        (MLflow before 3.4), found out once per tracking URI."""
        if self.tracking_uri not in self.unbatched:
            if log_spans(client, self.experiment_id, batch.spans):
                return
            with self._lock:
                first = self.tracking_uri not in self.unbatched
                self.unbatched.add(self.tracking_uri)
            if first:
                logger.debug(
                    "%s has no batched span ingestion (MLflow < 3.4): one request per trace",
                    redact_url(self.tracking_uri),
                )
        batch.log_one_by_one(client)

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
    os.environ.clear()
    os.environ.update(environ)
    _http_retries()
    use_added_providers(providers)


_RETRY_SETTINGS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")
_parent_retries: dict[str, str] = {}  # the parent's own values of _RETRY_SETTINGS


def _http_retries() -> None:
    """MLflow retries a refused request for about 2 minutes by itself: here a trace's request
    gives up within seconds, and `write` waits for the server on its own clock (server_wait_s).
    The store tasks keep MLflow's retries (_store_retries)."""
    _parent_retries.clear()
    _parent_retries.update({k: os.environ[k] for k in _RETRY_SETTINGS if k in os.environ})
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2" if server_wait_s() >= 10 else "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")


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


def _import_mlflow(tracking_uri: str) -> None:
    """MLflow's import (seconds) now, while the parent opens the store, rather than when the
    first call arrives. The store itself is opened at the first trace, once the parent has
    made it: two processes creating one new sqlite file would collide."""
    import mlflow.tracing.utils  # noqa: F401

    if tracking_uri.startswith("sqlite:"):
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


class _Batch:
    """The writes of one batch, each made once: after the server comes back, a retry sends only
    what had not reached it (the spans and their trace ids are built once)."""

    def __init__(self, experiment_id: str, jobs: list[TraceJob]) -> None:
        self.experiment_id = experiment_id
        self.jobs = jobs
        self.spans = [build_span(experiment_id, job) for job in jobs]
        self.spans_logged = False
        self.one_by_one = 0  # traces written so far on the per-trace path
        self.linked: set[str] = set()  # runs whose traces are linked
        self.n_scored = 0  # assessments written so far

    def finish(self, client: Any) -> None:
        from .assessments import log_scores

        by_run: dict[str, list[str]] = {}
        for job, span in zip(self.jobs, self.spans, strict=True):
            by_run.setdefault(job.run_id, []).append(span.trace_id)
        for run_id, trace_ids in by_run.items():
            if run_id not in self.linked:
                client.link_traces_to_run(trace_ids, run_id)
                self.linked.add(run_id)
        scored = [
            (span.trace_id, score)
            for job, span in zip(self.jobs, self.spans, strict=True)
            for score in job.scores
        ]
        log_scores(client, scored[self.n_scored :], on_logged=self._count_scored)

    def _count_scored(self, n: int) -> None:
        self.n_scored += n

    def log_one_by_one(self, client: Any) -> None:
        """Each trace as MLflow's exporter writes it to a server before 3.4."""
        while self.one_by_one < len(self.spans):
            job, span = self.jobs[self.one_by_one], self.spans[self.one_by_one]
            upload_trace(client, self.experiment_id, job, span)
            self.one_by_one += 1


def server_wait_s() -> float:
    """How long a run waits for a tracking server that stopped answering (LLMFLOW_SERVER_WAIT_S,
    default 2 minutes) before it stops sending calls."""
    value = os.environ.get(SERVER_WAIT_ENV, "")
    try:
        return max(0.0, float(value)) if value else _SERVER_AWAY_S
    except ValueError:
        return _SERVER_AWAY_S


def _server_away(error: BaseException) -> bool:
    """The server did not answer: MLflow's version probe found nobody, or a request was refused
    (nothing reached the server, so a retry writes nothing twice). The probe does not retry, and
    MLflow caches its "unknown" answer for the life of the process: forget it, so that a server
    back up is asked again."""
    if isinstance(error, NotImplementedError) and _VERSION_UNKNOWN in str(error):
        from mlflow.store.tracking.rest_store import RestStore

        # MLflow offers no public way to forget it; getattr: a later MLflow may not cache
        cached = getattr(RestStore._get_server_version, "cache_clear", None)
        if cached is not None:
            cached()
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
            in_run = message != _END
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
    _http_retries()
    store_kind = argv[0] if argv else ""
    with gc_paused():  # at once: the parent may still be reading its experiment file
        _import_mlflow(f"{store_kind}:")
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not mix into the replies
    return sys.stdin.buffer, replies
