"""The worker's run: the calls it was sent (kept on disk for the finish), their scores, and their
traces written in batches; the wait for a tracking server that went away."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._process import gc_paused, server_wait_s
from ..redact import one_line, redact_url
from ..report.publish import preload
from ..scoring import CaseChecks, Score, score_record
from ..scoring.checks import load_libraries
from ..scoring.guard import CheckGuard
from ..tracking import mlflow_compat
from ..tracking.mlflow_import import import_mlflow
from ..tracking.span_ingestion import TraceServer, trace_server
from ..tracking.trace_batch import TraceBatch
from ..tracking.traces import TraceJob
from ..types import CallRecord
from .context import work_as_parent
from .protocol import BeginCalls, OpenRun, Reply, ServerAway, TraceCall, TraceCount, Written
from .spill import RecordSpill

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from ..config import LoadedExperiment
    from ..plan import Plan, Variant

logger = logging.getLogger(__name__)

# the scores of each call, by variant id, then by (case_id, repeat)
ScoresByVariant = dict[str, dict[tuple[str, int], tuple[Score, ...]]]
# batches in flight at once to a server: its workers ingest them in parallel (measured here,
# 400 traces into `mlflow server --workers 4` on PostgreSQL: 8.8 s with one writer, 5.0 s with 4)
WRITERS = 4


class RunState:
    """The run being written, and a client per store seen so far."""

    def __init__(self, notify: Callable[[Reply], None] = lambda reply: None) -> None:
        self.clients: dict[str, MlflowClient] = {}
        self.servers: dict[str, TraceServer] = {}  # what each store takes (its release)
        self.tracking_uri = ""
        self.experiment_id = ""
        self.begun: BeginCalls | None = None
        self.report = False  # the run renders a report (in the worker, at its finish)
        self.variants: dict[str, Variant] = {}
        self.pending: list[TraceJob] = []  # traces a task asked for (Resume), written next
        # (variant id, case id, repeat) of calls traced as failed before a resume: one sent
        # again and answered has its trace's state restated
        self.failed_traces: set[tuple[str, str, int]] = set()
        self.records = RecordSpill()  # the calls, by variant id, on disk
        self.run_ids: dict[str, str] = {}  # each variant's run, as its calls said
        self.scores: ScoresByVariant = {}  # this run's
        self.guard = CheckGuard()  # this run's checks, bounded (scoring/guard.py)
        self.written = 0
        self.done = 0  # calls whose trace was written or failed
        self.failure_reason = ""
        self.away_since: float | None = None  # when the server stopped answering
        self.gone = False  # away past the bound: this run writes nothing more
        self.unbatched: set[str] = set()  # servers found without batched span ingestion
        self.writers = 1  # batches written at once: WRITERS to a server, 1 to a local store
        self._lock = threading.Lock()  # the writers share the counts and the server's state
        self._notify = notify  # a reply to the parent, mid-run

    @property
    def loaded(self) -> LoadedExperiment:
        return self._begun().loaded

    @property
    def plan(self) -> Plan:
        return self._begun().plan

    def _begun(self) -> BeginCalls:
        if self.begun is None:
            raise RuntimeError("the worker was asked to finish a run it was never told of")
        return self.begun

    def counts(self) -> TraceCount:
        with self._lock:
            return TraceCount(self.written, self.failure_reason)

    def open(self, message: OpenRun) -> None:
        """A new run: its store and the parent's context; the imports its checks need."""
        self.tracking_uri = message.tracking_uri
        if message.cwd is not None and message.environ is not None:
            work_as_parent(message.cwd, message.environ, message.providers)
        self.written, self.failure_reason, self.away_since = 0, "", None
        self.done = 0
        self.gone, self.scores, self.guard = False, {}, CheckGuard()
        self.records.close()
        self.begun, self.records, self.run_ids = None, RecordSpill(), {}
        self.variants, self.pending, self.failed_traces = {}, [], set()
        remote = self.tracking_uri.startswith(("http://", "https://"))
        self.writers = WRITERS if remote else 1  # sqlite takes one writer at a time
        self.report = message.report
        with gc_paused():
            import_mlflow(self.tracking_uri)
            load_libraries(message.check_types)

    def begin(self, message: BeginCalls) -> None:
        self.begun, self.experiment_id = message, message.experiment_id
        if self.report:  # matplotlib (a second) while the calls run, off the store's opening
            threading.Thread(target=preload, name="llmflow-preload", daemon=True).start()
        self.variants = {v.id: v for v in message.plan.variants}

    def take(self, message: TraceCall) -> TraceJob:
        """A finished call: kept for the finish, scored; the job that writes its trace."""
        record = message.record
        self.records.add(record)
        self.run_ids[record.variant_id] = message.run_id
        return self.job(record, message.run_id)

    def job(self, record: CallRecord, run_id: str) -> TraceJob:
        """The trace job of a call, scored by the run's checks."""
        begun = self._begun()
        checks: CaseChecks | None = (begun.checks or {}).get(record.case_id)
        scores: tuple[Score, ...] = ()
        if checks is not None:
            scores = tuple(score_record(record, checks, self.guard))
            self.scores.setdefault(record.variant_id, {})[(record.case_id, record.repeat)] = scores
        key = (record.variant_id, record.case_id, record.repeat)
        restate = record.ok and key in self.failed_traces
        return TraceJob(record, self.variants[record.variant_id], run_id, scores, restate=restate)

    def write(self, jobs: list[TraceJob]) -> None:
        """Write one batch (from one of `writers` threads at once), waiting for a server that
        went away; then tell the parent how many calls are done with."""
        try:
            self._write(jobs)
        finally:
            with self._lock:
                self.done += len(jobs)
                done = self.done
            if jobs:
                self._notify(Written(done))

    def _write(self, jobs: list[TraceJob]) -> None:
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

    def _log_spans(self, client: MlflowClient, batch: TraceBatch, server: TraceServer) -> None:
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
            self._notify(ServerAway(self.failure_reason))

    def _failed(self, jobs: list[TraceJob], error: Exception | None) -> None:
        logger.debug("could not write %d trace(s)", len(jobs), exc_info=error)
        with self._lock:
            if not self.failure_reason and error is not None:
                self.failure_reason = one_line(error)


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
