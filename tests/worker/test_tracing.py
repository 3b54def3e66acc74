"""A server that goes away mid-run (restarted, redeployed): the worker waits for it, up to
2 minutes (LLMFLOW_SERVER_WAIT_S), instead of failing every batch at once; past that it tells the
parent, which stops sending calls. A batch retried after an outage writes nothing twice, and a
server without batched span ingestion gets one request per trace."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmflow import _process
from llmflow.tracking import trace_batch
from llmflow.worker import tracing
from llmflow.worker.protocol import OpenRun, ServerAway, TraceCount, Written
from llmflow.worker.tracing import RunState

UNKNOWN = "log_spans is not supported: could not identify MLflow server version"
TOO_OLD = "log_spans is not supported: MLflow server version 3.3.0 is less than 3.4"


def child(monkeypatch: pytest.MonkeyPatch, failures: list[str]) -> tuple[RunState, list]:
    """A run state whose writes fail with `failures` first, then succeed; no real sleeping."""
    calls: list[int] = []
    pending = list(failures)

    def fake_write(self, batch):
        calls.append(len(batch.jobs))
        if pending:
            raise NotImplementedError(pending.pop(0))

    monkeypatch.setattr(RunState, "_write_once", fake_write)
    monkeypatch.setattr(
        tracing, "TraceBatch", lambda experiment_id, jobs: SimpleNamespace(jobs=jobs)
    )
    monkeypatch.setattr(tracing.time, "sleep", lambda s: None)
    state = RunState()
    state.clients["http://127.0.0.1:1"] = object()
    state.tracking_uri = "http://127.0.0.1:1"
    return state, calls


def test_a_batch_waits_for_the_server_to_come_back(monkeypatch):
    state, calls = child(monkeypatch, [UNKNOWN, UNKNOWN])
    state.write(["job"] * 3)
    assert state.written == 3 and not state.failure_reason and calls == [3, 3, 3]


def test_a_server_that_never_comes_back_fails_the_batch_with_its_reason(monkeypatch):
    clock = iter(range(0, 10_000, 20))  # 20 s pass between looks at the clock
    monkeypatch.setattr(tracing.time, "monotonic", lambda: next(clock))
    state, calls = child(monkeypatch, [UNKNOWN] * 100)
    state.write(["job"] * 2)
    assert state.written == 0 and 1 < len(calls) < 10
    assert "could not identify MLflow server version" in state.failure_reason


def test_a_server_too_old_for_batches_fails_at_once(monkeypatch):
    state, calls = child(monkeypatch, [TOO_OLD])
    state.write(["job"])
    assert state.written == 0 and calls == [1] and "less than 3.4" in state.failure_reason


def test_one_wait_for_the_whole_outage_not_one_per_batch(monkeypatch):
    clock = iter(range(0, 10_000, 20))
    monkeypatch.setattr(tracing.time, "monotonic", lambda: next(clock))
    state, calls = child(monkeypatch, [UNKNOWN] * 100)
    state.write(["job"])
    tries_first = len(calls)
    state.write(["job"])  # the server stayed away past the bound: this run sends nothing more
    assert len(calls) == tries_first and state.written == 0 and state.gone


def test_a_server_gone_past_the_bound_is_told_to_the_parent_once(monkeypatch):
    clock = iter(range(0, 10_000, 20))
    monkeypatch.setattr(tracing.time, "monotonic", lambda: next(clock))
    state, _ = child(monkeypatch, [UNKNOWN] * 100)
    told: list[ServerAway | Written] = []
    state._notify = told.append
    state.write(["job"])
    state.write(["job"])
    away = [reply for reply in told if isinstance(reply, ServerAway)]
    assert away == [ServerAway(state.failure_reason)] and UNKNOWN in told[0].reason
    # each batch is counted as done with, written or failed: the parent's calls go on
    assert [reply for reply in told if isinstance(reply, Written)] == [Written(1), Written(2)]
    monkeypatch.setattr(tracing, "import_mlflow", lambda tracking_uri: None)
    state.open(OpenRun("http://127.0.0.1:1"))  # the next run tries the server again
    assert not state.gone


def test_the_wait_is_set_by_the_environment(monkeypatch):
    monkeypatch.setenv(_process.SERVER_WAIT_ENV, "2.5")
    assert _process.server_wait_s() == 2.5
    monkeypatch.setenv(_process.SERVER_WAIT_ENV, "soon")
    assert _process.server_wait_s() == 120.0
    monkeypatch.delenv(_process.SERVER_WAIT_ENV)
    assert _process.server_wait_s() == 120.0


def mlflow_error_from(cause: Exception) -> Exception:
    """What MLflow's http_request raises: its own exception, the original as the context."""
    from mlflow.exceptions import MlflowException

    try:
        try:
            raise cause
        except Exception as e:
            raise MlflowException(f"API request failed with exception {e}")  # noqa: B904
    except MlflowException as wrapped:
        return wrapped


def test_a_refused_request_is_the_server_away_but_a_timeout_is_not():
    from requests import exceptions as http

    assert tracing._server_away(mlflow_error_from(http.ConnectionError("refused")))
    assert tracing._server_away(mlflow_error_from(http.RetryError("too many 503 error responses")))
    assert not tracing._server_away(mlflow_error_from(http.ReadTimeout("read timed out")))
    assert not tracing._server_away(
        mlflow_error_from(http.RetryError("too many 500 error responses"))
    )
    assert not tracing._server_away(ValueError("bad span"))


class FlakyServer:
    """A client whose server refuses `refusals` requests to link traces, then takes them."""

    def __init__(self, refusals: int) -> None:
        from requests import exceptions as http

        self.refusals = refusals
        self.batches: list[list[str]] = []
        self.links: list[list[str]] = []
        self.assessments: list[tuple[str, str]] = []
        self.refused = mlflow_error_from(http.ConnectionError("Connection refused"))
        self._tracking_client = SimpleNamespace(store=self)

    def log_spans(self, experiment_id: str, spans: list) -> None:
        self.batches.append([span.trace_id for span in spans])

    def link_traces_to_run(self, trace_ids: list[str], run_id: str) -> None:
        if self.refusals:
            self.refusals -= 1
            raise self.refused
        self.links.append(trace_ids)

    def start_trace(self, info) -> None:
        """Takes a written trace's scores; refuses once, when `refuse_assessment_at` assessments
        have been taken."""
        if len(self.assessments) == getattr(self, "refuse_assessment_at", -1):
            self.refuse_assessment_at = -1
            raise self.refused
        self.assessments += [(info.trace_id, a.name) for a in info.assessments]


def jobs(n: int) -> list:
    from llmflow.tracking.traces import TraceJob
    from tests.worker.test_client import records

    models = [{"provider": "ollama", "model": "llama3.1", "base_url": "http://127.0.0.1:9"}]
    variant = variant_of(models)
    return [TraceJob(record, variant, "run-1") for record in records(variant, 0, n)]


def variant_of(models: list[dict]):
    import tempfile
    from pathlib import Path

    from llmflow.config import load_experiment
    from llmflow.plan import build_plan
    from tests.helpers import write_experiment

    with tempfile.TemporaryDirectory() as tmp:
        return build_plan(load_experiment(write_experiment(Path(tmp), models))).variants[0]


def test_a_batch_retried_after_an_outage_sends_only_what_did_not_arrive(monkeypatch):
    monkeypatch.setattr(tracing.time, "sleep", lambda s: None)
    server = FlakyServer(refusals=2)
    state = RunState()
    state.clients["http://127.0.0.1:1"] = server
    state.tracking_uri, state.experiment_id = "http://127.0.0.1:1", "1"
    state.write(jobs(3))
    assert state.written == 3 and not state.failure_reason
    assert len(server.batches) == 1, "the spans were sent again after the server came back"
    assert server.links == server.batches


_NEVER_CLOSED: list = []


def most_batches_at_once(monkeypatch, tracking_uri: str, n_calls: int) -> tuple[int, str]:
    """Run the child's loop on one run of n_calls calls whose writes each take 1 s (long enough
    for the calls to arrive on a loaded machine: at 0.2 s a CI run saw 3 at once, not 4): how
    many batches were written at once at most, and the child's reply."""
    import threading
    import time
    from multiprocessing import Pipe

    from llmflow.worker import server
    from llmflow.worker.protocol import (
        PROTOCOL_VERSION,
        EndRun,
        Hello,
        OpenRun,
        RunEnded,
        TraceCall,
        Written,
    )
    from tests.worker.test_client import begin_calls

    active, most, lock = [0], [0], threading.Lock()

    def slow_write(self, batch):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(1.0)
        with lock:
            active[0] -= 1

    monkeypatch.setattr(RunState, "_write_once", slow_write)
    monkeypatch.setattr(tracing, "TraceBatch", lambda experiment_id, jobs: SimpleNamespace())
    monkeypatch.setattr(tracing, "import_mlflow", lambda tracking_uri: None)
    job = jobs(1)[0]
    messages = [
        OpenRun(tracking_uri),
        begin_calls("1", job.variant),
        *[TraceCall(job.record, "run-1")] * n_calls,
        EndRun(),
    ]
    requests, sending = Pipe(duplex=False)
    replies, answering = Pipe(duplex=False)
    _NEVER_CLOSED.append(sending)  # the worker's loop exits the process when its input ends
    threading.Thread(target=server.serve, args=(requests, answering), daemon=True).start()
    for message in messages:
        sending.send(message)
    assert replies.recv() == Hello(PROTOCOL_VERSION)
    done = 0
    while replies.poll(30):
        ended = replies.recv()
        if isinstance(ended, Written):  # after each batch: the calls done with so far
            assert ended.calls > done
            done = ended.calls
            continue
        assert isinstance(ended, RunEnded)
        assert done == n_calls  # every call's batch said so, written or failed
        return most[0], ended.traces
    raise AssertionError("the child never replied to the end of the run")


def test_a_server_gets_several_batches_at_once_a_local_store_one(monkeypatch):
    assert most_batches_at_once(monkeypatch, "http://127.0.0.1:1", 400) == (4, TraceCount(400, ""))
    assert most_batches_at_once(monkeypatch, "sqlite:///x.db", 400) == (1, TraceCount(400, ""))


def test_a_batch_retried_midway_through_its_scores_writes_each_score_once(monkeypatch):
    from llmflow.scoring import Score
    from llmflow.tracking.traces import TraceJob

    monkeypatch.setattr(tracing.time, "sleep", lambda s: None)
    server = FlakyServer(refusals=0)
    server.refuse_assessment_at = 4  # the server goes away after 4 of the 6 scores
    scores = (Score("a", True, True, ""), Score("b", 0.5, False, ""))
    scored = [TraceJob(j.record, j.variant, j.run_id, scores) for j in jobs(3)]
    state = RunState()
    state.clients["http://127.0.0.1:1"] = server
    state.tracking_uri, state.experiment_id = "http://127.0.0.1:1", "1"
    state.write(scored)
    assert state.written == 3 and not state.failure_reason
    assert len(server.assessments) == len(set(server.assessments)) == 6


def test_a_span_that_cannot_be_built_fails_its_batch_with_the_reason(monkeypatch):
    def unbuildable(experiment_id, job):
        raise ValueError("an attribute MLflow cannot encode")

    monkeypatch.setattr(trace_batch, "build_span", unbuildable)
    state = RunState()
    state.tracking_uri, state.experiment_id = "http://127.0.0.1:1", "1"
    state.write(jobs(2))
    assert state.written == 0 and "cannot encode" in state.failure_reason
