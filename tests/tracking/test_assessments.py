"""Scores as assessments on a SQL store: the rows llmflow inserts in one statement are the rows
MLflow's own conversion makes, and read back through MLflow's client as the Feedback written."""

from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.scoring import Score
from llmflow.tracking import assessments
from llmflow.tracking.assessments import JUDGE_KEY, _orm_row, _row, log_scores, score_of
from llmflow.tracking.trace_batch import write_traces
from llmflow.tracking.traces import TraceJob
from tests.worker.test_client import open_variant_run, records

SCORES = [
    Score("filled", True, True, "answer is not empty"),
    Score("short", 12, False, "12 characters (at most 10)"),
    Score("rouge-l", 0.625, True, "ROUGE-L F1 0.625 against the expected answer"),
    Score("schema", None, False, "", error="the answer is not JSON"),
    Score("helpful", 0.8, True, "clear", source="LLM_JUDGE", judge="sig-1"),
]
UNEQUAL = {"assessment_id", "created_timestamp", "last_updated_timestamp"}  # fresh per row


@pytest.mark.parametrize("score", SCORES, ids=[s.name for s in SCORES])
@pytest.mark.parametrize("overrides", [None, "a-0123"])
def test_the_row_is_the_one_mlflow_builds_from_the_feedback(score: Score, overrides):
    ours, mlflow = _row("tr-1", score, overrides), _orm_row("tr-1", score, overrides)
    assert set(ours) == assessments.ROW_COLUMNS - {"experiment_id", "trace_timestamp_ms"}
    assert set(ours) == set(mlflow)
    assert {k: ours[k] for k in ours if k not in UNEQUAL} == {
        k: mlflow[k] for k in mlflow if k not in UNEQUAL
    }
    assert ours["assessment_id"].startswith("a-")


def written_traces(tmp_path: Path, tracking_uri: str, n: int) -> tuple[MlflowClient, list[str]]:
    _, experiment_id, variant, run_id = open_variant_run(tmp_path, tracking_uri)
    client = MlflowClient(tracking_uri)
    write_traces(
        client, experiment_id, [TraceJob(r, variant, run_id) for r in records(variant, 0, n)]
    )
    traces = client.search_traces(locations=[experiment_id], include_spans=False)
    return client, sorted(t.info.trace_id for t in traces)


@pytest.mark.parametrize("columns", ["these", "another MLflow's"])
def test_scores_read_back_as_written_and_an_override_replaces(
    tmp_path: Path, tracking_uri: str, monkeypatch, columns: str
):
    if columns != "these":  # a schema this code does not know: MLflow's own conversion
        monkeypatch.setattr(assessments, "ROW_COLUMNS", {"assessment_id"})
    client, trace_ids = written_traces(tmp_path, tracking_uri, 2)
    log_scores(client, [(trace_id, score) for trace_id in trace_ids for score in SCORES])
    found = client.get_trace(trace_ids[1]).info.assessments
    assert {a.name: score_of(a) for a in found} == {s.name: s for s in SCORES}
    judged = next(a for a in found if a.name == "helpful")
    assert judged.source.source_type == "LLM_JUDGE" and judged.metadata[JUDGE_KEY] == "sig-1"

    better = Score("short", 8, True, "8 characters (at most 10)")
    old = next(a for a in found if a.name == "short")
    log_scores(client, [(trace_ids[1], better)], overrides=[old.assessment_id])
    now = client.get_trace(trace_ids[1]).info.assessments
    valid = [a for a in now if a.name == "short" and a.valid is not False]
    assert [score_of(a) for a in valid] == [better] and len(now) == len(SCORES) + 1
