"""The writes of a batch of up to BATCH traces, in the order every store needs, each made once:
the spans (span_ingestion), then the scores as assessments and the links to the runs. A retry
after a server came back sends only what had not reached it; the spans and their trace ids are
built once.

Before 3.13 a server gets every trace's info (its name, and its scores) before the link to the
run: a trace linked is then a trace named, so `--resume` never links one twice, which servers
before 3.6 refuse. Otherwise the links go first, and the scores after.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import mlflow_compat
from .assessments import log_scores
from .span_ingestion import TraceServer, log_spans, trace_server
from .traces import TraceJob, build_span, trace_of


class TraceBatch:
    def __init__(self, experiment_id: str, jobs: list[TraceJob]) -> None:
        self.experiment_id = experiment_id
        self.jobs = jobs
        self.spans = [build_span(experiment_id, job) for job in jobs]
        self.spans_logged = False  # by either path
        self.spans_sent = 0  # spans the store took so far (one trace per request: a retry goes on)
        self.uploaded = 0  # traces written so far on the per-trace path
        self.linked: set[str] = set()  # runs whose traces are linked
        self.scored = 0  # log_job_scores' writes made so far
        self.restated = False

    def log_spans(self, client: Any, server: TraceServer) -> bool:
        """The spans not sent yet, batched; False, with nothing written, when the store has no
        batched span ingestion (then `upload_one_by_one`)."""
        unsent = self.spans[self.spans_sent :]
        if not log_spans(
            client, self.experiment_id, unsent, server.one_trace_per_request, self._count_sent
        ):
            return False
        self.spans_logged = True
        return True

    def upload_one_by_one(self, client: Any) -> None:
        """Each trace not uploaded yet as MLflow's exporter writes it to a server before 3.4,
        its name and scores in its info."""
        while self.uploaded < len(self.spans):
            job, span = self.jobs[self.uploaded], self.spans[self.uploaded]
            mlflow_compat.upload_trace(client.tracking_uri, trace_of(self.experiment_id, job, span))
            self.uploaded += 1
            self.scored += 1  # this job's info is sent: log_job_scores' write of it, on a server
        self.spans_logged = True

    def finish(self, client: Any, server: TraceServer) -> None:
        """The scores and the links to the runs not written yet, in the order above."""
        if server.sends_every_info:
            self._log_scores(client, server)
            self._link(client)
        else:
            self._link(client)
            self._log_scores(client, server)
        self._restate(client)

    def _restate(self, client: Any) -> None:
        """The info of each trace first written for a failed call, now answered: log_spans
        rewrites its span but keeps the trace's first state (ERROR); start_trace of a trace
        that exists updates its state, as MLflow's exporter finishing a trace does."""
        if self.restated:
            return
        store = mlflow_compat.tracking_store(client)
        for job, span in zip(self.jobs, self.spans, strict=True):
            if job.restate:
                store.start_trace(trace_of(self.experiment_id, job, span, scores=False).info)
        self.restated = True

    def _link(self, client: Any) -> None:
        for run_id, trace_ids in trace_ids_by_run(self.jobs, self.spans).items():
            if run_id not in self.linked:
                client.link_traces_to_run(trace_ids, run_id)
                self.linked.add(run_id)

    def _log_scores(self, client: Any, server: TraceServer) -> None:
        log_job_scores(
            client, self.experiment_id, self.jobs, self.spans, self.scored, self._count, server
        )

    def _count(self, n: int) -> None:
        self.scored += n

    def _count_sent(self, n: int) -> None:
        self.spans_sent += n


def write_traces(client: Any, experiment_id: str, jobs: list[TraceJob]) -> None:
    """Write a batch of traces at once, without retries (worker/tracing.py retries its batches)."""
    server = trace_server(client)
    batch = TraceBatch(experiment_id, jobs)
    if not batch.log_spans(client, server):
        batch.upload_one_by_one(client)
    batch.finish(client, server)


def trace_ids_by_run(jobs: list[TraceJob], spans: list[Any]) -> dict[str, list[str]]:
    """The ids of the jobs' traces (their spans, in the same order), by the run each is linked
    to (a job that is not linked to its run is left out)."""
    by_run: dict[str, list[str]] = {}
    for job, span in zip(jobs, spans, strict=True):
        if job.linked:
            by_run.setdefault(job.run_id, []).append(span.trace_id)
    return by_run


def log_job_scores(
    client: Any,
    experiment_id: str,
    jobs: list[TraceJob],
    spans: list[Any],
    done: int = 0,
    on_logged: Callable[[int], None] | None = None,
    server: TraceServer | None = None,
) -> None:
    """The jobs' scores as assessments on their (written) traces, less the writes `done`
    already; `on_logged(n)` after each write (n of them). A write is one score on a SQL store,
    one job (its trace's info sent, or not needed) on a server.

    A SQL store takes them in one statement (assessments.log_scores). MLflow's server has no
    batch endpoint for assessments, but its start_trace takes a trace's info with its
    assessments and, for a trace log_spans already wrote, adds them (MLflow's own exporter sends
    a trace's spans, then its info with the assessments logged while it ran, the same way): one
    request per scored trace instead of one per score (measured here, a server on PostgreSQL:
    113 ms for a trace's 5 scores, 78 ms for each score alone). A server that takes no trace
    name from the spans (TraceServer.sends_every_info) gets every trace's info."""
    store = mlflow_compat.tracking_store(client)
    if mlflow_compat.batchable(store):
        pairs = [
            (span.trace_id, s) for job, span in zip(jobs, spans, strict=True) for s in job.scores
        ]
        log_scores(client, pairs[done:], on_logged=on_logged)
        return
    every_info = server is not None and server.sends_every_info
    for job, span in list(zip(jobs, spans, strict=True))[done:]:
        if job.scores or every_info:
            store.start_trace(trace_of(experiment_id, job, span).info)
        if on_logged is not None:
            on_logged(1)
