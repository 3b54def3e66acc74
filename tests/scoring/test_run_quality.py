"""Quality end to end: `llmflow run` against the fake Ollama server (it answers "Echo: <prompt>"),
so the answers, and with them the pass rates, are known exactly."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.scoring import wilson_interval
from llmflow.stats import clustered_rate_interval
from llmflow.tracking.traces import call_of
from tests.helpers import write_experiment

PROMPTS = [
    {
        "id": "capital",
        "user": "Capital of France? Paris",
        "expected": "Echo: Capital of France? Paris",
    },
    {
        "id": "river",
        "user": "Longest river?",
        "assert": [{"type": "icontains", "value": "nile"}],  # the echo never says nile
    },
]
SCORERS = [
    {"type": "not-empty"},
    {"type": "regex", "value": "^Echo"},
    {"type": "icontains", "value": "paris", "name": "mentions-paris"},
    {"type": "rouge-l", "threshold": 0.9},
]


def run(tmp_path: Path, tracking_uri: str, fake_ollama, **fields) -> dict:
    model = {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}
    fields.setdefault("prompts", PROMPTS)
    path = write_experiment(tmp_path, [model], repeats=3, **fields)
    result = CliRunner().invoke(app, ["run", str(path), "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    client = MlflowClient(tracking_uri)
    (child,) = client.search_runs(
        [client.get_experiment_by_name("provider-comparison").experiment_id],
        filter_string="tags.`llmflow.kind` = 'variant'",
    )
    table = json.loads(Path(client.download_artifacts(child.info.run_id, "calls.json")).read_text())
    traces = client.search_traces(
        locations=[child.info.experiment_id], run_id=child.info.run_id, include_spans=False
    )
    calls = [t for t in traces if "llmflow.role" not in t.info.tags]  # not the judges' own
    return {"metrics": child.data.metrics, "table": table, "traces": calls}


def test_known_answers_give_exact_pass_rates(tmp_path: Path, tracking_uri: str, fake_ollama):
    found = run(tmp_path, tracking_uri, fake_ollama, scorers=SCORERS)
    metrics = found["metrics"]
    # capital passes all four; river fails mentions-paris and its own nile check
    assert metrics["pass_rate"] == 0.5
    assert metrics["n_scored"] == 6 and metrics["n_score_errors"] == 0
    # two prompts, each passing or failing on all 3 repeats: about 1 observation, not 6
    low, high = clustered_rate_interval([[True] * 3, [False] * 3])
    assert (low, high) == wilson_interval(0.5, 1)
    assert metrics["pass_rate_ci_low"] == low and metrics["pass_rate_ci_high"] == high
    assert metrics["score.not-empty"] == 1.0
    assert metrics["score.mentions-paris"] == 0.5
    assert metrics["score.rouge-l"] == 1.0  # only capital has a reference
    assert metrics["score.river.icontains"] == 0.0  # river's own check, named after it
    columns = found["table"]["columns"]
    rows = [dict(zip(columns, row, strict=True)) for row in found["table"]["data"]]
    assert {"not-empty", "regex", "mentions-paris", "rouge-l", "river.icontains", "passed"} <= set(
        columns
    )
    by_case = {r["case"]: r for r in rows}
    assert by_case["capital"]["passed"] is True and by_case["river"]["passed"] is False
    assert by_case["river"]["rouge-l"] is None and by_case["capital"]["river.icontains"] is None


def test_no_checks_no_quality_columns(tmp_path: Path, tracking_uri: str, fake_ollama):
    found = run(tmp_path, tracking_uri, fake_ollama, prompts=[{"id": "a", "user": "Hi"}])
    assert "pass_rate" not in found["metrics"]
    assert "passed" not in found["table"]["columns"]


def test_each_score_is_an_assessment_on_its_trace(tmp_path: Path, tracking_uri: str, fake_ollama):
    found = run(tmp_path, tracking_uri, fake_ollama, scorers=SCORERS)
    assert len(found["traces"]) == 6
    for trace in found["traces"]:
        by_name = {a.name: a for a in trace.info.assessments}
        if call_of(trace.info).startswith("river"):
            assert set(by_name) == {"not-empty", "regex", "mentions-paris", "river.icontains"}
            assert by_name["river.icontains"].value is False
            assert by_name["river.icontains"].rationale == "'nile' not found (ignoring case)"
        else:
            assert by_name["rouge-l"].value == 1.0
        assert {a.source.source_type for a in trace.info.assessments} == {"CODE"}


def test_score_rescoring_calls_no_model_and_is_idempotent(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    run(tmp_path, tracking_uri, fake_ollama, scorers=SCORERS)
    sent = len(fake_ollama.requests)
    edited = [*SCORERS[:2], {"type": "icontains", "value": "echo", "name": "mentions-paris"}]
    path = write_experiment(
        tmp_path,
        [{"provider": "ollama", "model": "llama3.1"}],
        name="edited.yaml",
        prompts=PROMPTS,
        scorers=edited,
    )
    score = ["score", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    first = CliRunner().invoke(app, [*score, "--config", str(path)])
    assert first.exit_code == 0, first.output
    assert "llama3.1: pass rate 50.0% (n=6)" in first.output  # river still fails its nile check
    assert "new assessment(s)" in first.output
    assert len(fake_ollama.requests) == sent  # no model was called again
    client = MlflowClient(tracking_uri)
    (child,) = client.search_runs(
        [client.get_experiment_by_name("provider-comparison").experiment_id],
        filter_string="tags.`llmflow.kind` = 'variant'",
    )
    assert child.data.metrics["score.mentions-paris"] == 1.0
    table = json.loads(Path(client.download_artifacts(child.info.run_id, "calls.json")).read_text())
    assert "rouge-l" not in table["columns"] and "mentions-paris" in table["columns"]
    traces = client.search_traces(
        locations=[child.info.experiment_id], run_id=child.info.run_id, include_spans=False
    )
    for trace in traces:
        valid = [a for a in trace.info.assessments if a.name == "mentions-paris" and a.valid]
        assert [a.value for a in valid] == [True]
    again = CliRunner().invoke(app, [*score, "--config", str(path)])
    assert again.exit_code == 0 and "nothing changed" in again.output, again.output


def test_score_says_which_scored_calls_have_no_trace(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    """A call whose trace is gone (or was never written) is scored into the metrics and
    calls.json; the command says that no assessment carries it, instead of a quiet count."""
    found = run(tmp_path, tracking_uri, fake_ollama)
    client = MlflowClient(tracking_uri)
    gone = [t.info.trace_id for t in found["traces"][:2]]
    client.delete_traces(found["traces"][0].info.experiment_id, trace_ids=gone)
    model = {"provider": "ollama", "model": "llama3.1"}
    path = write_experiment(tmp_path, [model], name="s.yaml", prompts=PROMPTS, scorers=SCORERS)
    score = ["score", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    result = CliRunner().invoke(app, [*score, "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "llama3.1: pass rate" in result.stdout and "(n=6)" in result.stdout
    assert result.stderr.strip() == (
        "warning: 2 scored call(s) have no trace llmflow can find in the run, so no assessment:"
        " their scores are in the metrics and calls.json only"
    )


def test_score_without_checks_is_a_config_error(tmp_path: Path, tracking_uri: str, fake_ollama):
    run(tmp_path, tracking_uri, fake_ollama, prompts=[{"id": "a", "user": "Hi"}])
    result = CliRunner().invoke(
        app, ["score", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    )
    assert result.exit_code == 2
    assert "no scorers: or assert: to score with" in result.output


def judge(fake_ollama) -> dict:
    return {
        "type": "judge",
        "name": "correct",
        "provider": "ollama",
        "model": "llama3.1",
        "base_url": fake_ollama.url,
        "rubric": "Is the answer correct?",
        "threshold": 0.7,
    }


def test_a_judge_grades_through_the_provider_layer(tmp_path: Path, tracking_uri: str, fake_ollama):
    found = run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    metrics = found["metrics"]
    # the fake judge gives 1 when the answer holds the reference: only capital has one
    assert metrics["pass_rate"] == 0.5 and metrics["score.correct"] == 0.5
    assert metrics["judge_cost_usd"] == 0.0  # ollama: the local cost model, $0 an hour
    judge_requests = [r for r in fake_ollama.completed if '{"score":' in str(r.body)]
    assert len(judge_requests) == 6 and all(r.body["stream"] is False for r in judge_requests)
    for trace in found["traces"]:
        (assessment,) = [a for a in trace.info.assessments if a.name == "correct"]
        assert assessment.source.source_type == "LLM_JUDGE"
        assert assessment.rationale in ("reference found", "reference missing")


def test_an_unparseable_judge_answer_is_a_scorer_error(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    fake_ollama.judge_unparseable = True
    found = run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    metrics = found["metrics"]
    assert metrics["pass_rate"] == 0.0 and metrics["n_score_errors"] == 6
    assert "score.correct" not in metrics  # no value was read, so no mean
    for trace in found["traces"]:
        (assessment,) = [a for a in trace.info.assessments if a.name == "correct"]
        assert assessment.value is None and "not {'score'" in assessment.error.error_message


def test_a_hostile_judge_answer_is_a_scorer_error_not_a_dead_run(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    """A judge answering JSON nested 100,000 deep (or a number of 5,000 digits) once raised
    RecursionError after every judge was paid, left the runs RUNNING, and did so again on
    every --resume."""
    fake_ollama.judge_reply = '{"score": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    found = run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    metrics = found["metrics"]
    assert metrics["pass_rate"] == 0.0 and metrics["n_score_errors"] == 6


def test_score_asks_only_the_judges_and_only_when_they_changed(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    sent = len(fake_ollama.completed)
    score = ["score", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    same = CliRunner().invoke(app, score)  # the stored file: the same judge
    assert same.exit_code == 0 and "nothing changed" in same.output, same.output
    assert len(fake_ollama.completed) == sent
    stricter = {**judge(fake_ollama), "rubric": "Is the answer exactly right?"}
    model = {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}
    path = write_experiment(
        tmp_path, [model], name="edited.yaml", prompts=PROMPTS, scorers=[stricter]
    )
    changed = CliRunner().invoke(app, [*score, "--config", str(path)])
    assert changed.exit_code == 0 and "6 new assessment(s)" in changed.output, changed.output
    new = fake_ollama.completed[sent:]
    assert len(new) == 6 and all('{"score":' in str(r.body) for r in new)  # judges only
    again = CliRunner().invoke(app, [*score, "--config", str(path)])
    assert "nothing changed" in again.output and len(fake_ollama.completed) == sent + 6
