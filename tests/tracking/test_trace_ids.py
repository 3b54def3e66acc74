"""A call written twice is one trace: its ids come from its run and call, and the store upserts.
This is what makes a batch that reached a server just before it went away, then `--resume`,
leave one trace per call."""

from pathlib import Path

from llmflow.tracking.traces import ROLE_TAG, TraceJob, write_traces
from tests.tracking.test_trace_writer import open_variant_run, records


def traced(store, experiment_id: str) -> list:
    return store.client.search_traces(locations=[experiment_id], max_results=100)


def test_the_same_call_written_twice_is_one_trace(tmp_path: Path, tracking_uri: str):
    store, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    jobs = [TraceJob(r, variant, run_id) for r in records(variant, 0, 3)]
    write_traces(store.client, experiment_id, jobs)
    write_traces(store.client, experiment_id, jobs[1:])  # the resume of a half-written batch
    found = traced(store, experiment_id)
    assert sorted(t.info.tags["llmflow.call"] for t in found) == [
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
