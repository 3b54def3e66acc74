"""A server that goes away mid-run (restarted, redeployed): the trace writer waits for it, up to
a minute, instead of failing every batch on MLflow's unanswered version probe."""

from __future__ import annotations

import pytest

from llmflow.tracking import trace_writer
from llmflow.tracking.trace_writer import _ChildState

UNKNOWN = "log_spans is not supported: could not identify MLflow server version"
TOO_OLD = "log_spans is not supported: MLflow server version 3.3.0 is less than 3.4"


def child(monkeypatch: pytest.MonkeyPatch, failures: list[str]) -> tuple[_ChildState, list]:
    """A child state whose writes fail with `failures` first, then succeed; no real sleeping."""
    calls: list[int] = []
    pending = list(failures)

    def fake_write(client, experiment_id, jobs):
        calls.append(len(jobs))
        if pending:
            raise NotImplementedError(pending.pop(0))

    monkeypatch.setattr(trace_writer, "write_traces", fake_write)
    monkeypatch.setattr(trace_writer.time, "sleep", lambda s: None)
    state = _ChildState()
    state.clients["http://127.0.0.1:1"] = object()
    state.tracking_uri = "http://127.0.0.1:1"
    return state, calls


def test_a_batch_waits_for_the_server_to_come_back(monkeypatch):
    state, calls = child(monkeypatch, [UNKNOWN, UNKNOWN])
    state.write(["job"] * 3)
    assert state.written == 3 and not state.failure_reason and calls == [3, 3, 3]


def test_a_server_that_never_comes_back_fails_the_batch_with_its_reason(monkeypatch):
    clock = iter(range(0, 10_000, 20))  # 20 s pass between looks at the clock
    monkeypatch.setattr(trace_writer.time, "monotonic", lambda: next(clock))
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
    monkeypatch.setattr(trace_writer.time, "monotonic", lambda: next(clock))
    state, calls = child(monkeypatch, [UNKNOWN] * 100)
    state.write(["job"])
    tries_first = len(calls)
    state.write(["job"])  # the server is still away: this batch does not wait a minute again
    assert len(calls) - tries_first == 1 and state.written == 0
