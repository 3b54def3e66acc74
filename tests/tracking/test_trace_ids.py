"""A call written twice is one trace: its ids come from its run and call, and the store upserts.
This is what makes a batch that reached a server just before it went away, then `--resume`,
leave one trace per call."""

import sqlite3
from dataclasses import replace
from pathlib import Path

from llmflow.tracking.trace_batch import write_traces
from llmflow.tracking.traces import (
    CALL_NAME,
    CALL_TAG,
    ROLE_TAG,
    TraceJob,
    call_of,
    existing_trace_keys,
    traces_by_call,
)
from tests.worker.test_client import open_variant_run, records


def traced(store, experiment_id: str) -> list:
    return store.client.search_traces(locations=[experiment_id], max_results=100)


def test_the_same_call_written_twice_is_one_trace(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    jobs = [TraceJob(r, variant, run_id) for r in records(variant, 0, 3)]
    write_traces(store.client, experiment_id, jobs)
    write_traces(store.client, experiment_id, jobs[1:])  # the resume of a half-written batch
    found = traced(store, experiment_id)
    assert sorted(call_of(t.info) for t in found) == [
        "case-0#0",
        "case-1#0",
        "case-2#0",
    ]
    assert all(len(t.data.spans) == 1 for t in found)


def test_calls_of_other_runs_get_traces_of_their_own(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    other = store.start_variant(
        experiment_id, store.client.get_run(run_id).data.tags["mlflow.parentRunId"], variant, {}
    )
    (record,) = records(variant, 0, 1)
    write_traces(store.client, experiment_id, [TraceJob(record, variant, run_id)])
    write_traces(store.client, experiment_id, [TraceJob(record, variant, other)])
    assert len(traced(store, experiment_id)) == 2


def test_a_judge_call_made_again_is_a_new_trace(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    (record,) = records(variant, 0, 1)
    judge = TraceJob(record, variant, run_id, tags=((ROLE_TAG, "judge"),))
    write_traces(store.client, experiment_id, [judge])
    write_traces(store.client, experiment_id, [judge])
    assert len(traced(store, experiment_id)) == 2


def test_a_call_is_the_trace_name_and_no_tag_row(tmp_path: Path, tracking_uri: str):
    """ "<variant id> | <case id>#<repeat>" is the trace's name, kept in the trace's own row:
    the trace list says which variant answered, resume finds the calls by it (a warmup's repeat
    is negative), and no tag is written per trace."""
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    first, second = records(variant, 0, 2)
    jobs = [TraceJob(first, variant, run_id), TraceJob(replace(second, repeat=-1), variant, run_id)]
    write_traces(store.client, experiment_id, jobs)
    names = sorted(t.info.tags[CALL_NAME] for t in traced(store, experiment_id))
    assert names == [f"{variant.id} | case-0#0", f"{variant.id} | case-1#-1"]
    assert sorted(call_of(t.info) for t in traced(store, experiment_id)) == [
        "case-0#0",
        "case-1#-1",
    ]
    keys = existing_trace_keys(store.client, experiment_id, run_id, variant.id)
    assert keys == {("case-0", 0), ("case-1", -1)}
    with sqlite3.connect(tracking_uri.removeprefix("sqlite:///")) as db:
        tag_keys = {key for (key,) in db.execute("SELECT key FROM trace_tags")}
    assert CALL_NAME not in tag_keys and CALL_TAG not in tag_keys


def test_traces_named_before_the_variant_was_in_the_name_are_still_found(
    tmp_path: Path, tracking_uri: str, monkeypatch
):
    """Traces written before named the call alone, "<case id>#<repeat>": resume and re-scoring
    still find those calls."""
    from llmflow.tracking import traces

    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    (record,) = records(variant, 0, 1)
    monkeypatch.setattr(traces, "call_name", lambda variant_id, case, repeat: f"{case}#{repeat}")
    write_traces(store.client, experiment_id, [TraceJob(record, variant, run_id)])
    (trace,) = traced(store, experiment_id)
    assert trace.info.tags[CALL_NAME] == "case-0#0"
    found = traces_by_call(store.client, experiment_id, run_id, variant.id)
    assert found == {"case-0#0": trace.info.trace_id} == {call_of(trace.info): trace.info.trace_id}


def test_traces_that_name_their_call_in_a_tag_are_still_found(tmp_path: Path, tracking_uri: str):
    """Traces written before the call became the trace's name carry it as the llmflow.call tag:
    resume and re-scoring still find those calls."""
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    (record,) = records(variant, 0, 1)
    write_traces(
        store.client,
        experiment_id,
        [TraceJob(record, variant, run_id, tags=((CALL_TAG, "case-0#0"),))],
    )
    (trace,) = traced(store, experiment_id)
    assert CALL_NAME not in trace.info.tags
    found = traces_by_call(store.client, experiment_id, run_id, variant.id)
    assert found == {"case-0#0": trace.info.trace_id}


def test_a_trace_other_code_names_like_a_call_is_not_taken_for_one(
    tmp_path: Path, tracking_uri: str, monkeypatch
):
    """MLflow's fluent tracing names a trace after its root span: one that other code links to
    a variant run, named like a call, is neither taken as traced by --resume nor re-scored."""
    import mlflow

    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    (record,) = records(variant, 0, 1)
    write_traces(store.client, experiment_id, [TraceJob(record, variant, run_id)])
    (ours,) = traced(store, experiment_id)
    monkeypatch.setattr(mlflow.tracking._tracking_service.utils, "_tracking_uri", tracking_uri)
    monkeypatch.setenv("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
    with mlflow.start_run(run_id=run_id):
        for name in ("case-0#0", "case-1#0"):
            with mlflow.start_span(name=name):
                pass
    linked = store.client.search_traces(locations=[experiment_id], run_id=run_id)
    names = sorted(call_of(t.info) for t in linked)
    assert names == ["case-0#0", "case-0#0", "case-1#0"]  # all three are linked to the run
    assert existing_trace_keys(store.client, experiment_id, run_id, variant.id) == {("case-0", 0)}
    by_call = traces_by_call(store.client, experiment_id, run_id, variant.id)
    assert by_call == {"case-0#0": ours.info.trace_id}
