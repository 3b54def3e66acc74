"""Judge calls are traced apart from the model calls they grade, and `llmflow score` shows only
the checks now in effect."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.tracking import eval_view
from llmflow.tracking.traces import call_of, existing_trace_keys, traces_by_call
from tests.helpers import write_experiment
from tests.scoring.test_run_quality import PROMPTS, SCORERS, judge, run

SCORE = ["score", "-e", "provider-comparison"]


def variant_run(tracking_uri: str):
    client = MlflowClient(tracking_uri)
    (child,) = client.search_runs(
        [client.get_experiment_by_name("provider-comparison").experiment_id],
        filter_string="tags.`llmflow.kind` = 'variant'",
    )
    return client, child


def all_traces(client: MlflowClient, child) -> list:
    """The variant run's own traces, then the traces of the judge calls that graded them (in the
    experiment, not linked to the run: its trace list is the evaluation table of its calls)."""
    ids = child.info.experiment_id, child.info.run_id
    linked = client.search_traces(locations=[ids[0]], run_id=ids[1], include_spans=True)
    assert not judge_traces(linked), "a judge's trace is linked to the variant run"
    return [*linked, *eval_view.judge_traces(client, *ids)]


def judge_traces(traces: list) -> list:
    return [t for t in traces if t.info.tags.get("llmflow.role") == "judge"]


def test_each_judge_call_is_a_trace_linked_to_the_call_it_graded(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    found = run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    assert found["metrics"]["n_calls"] == 6  # the judge calls are not model calls
    client, child = variant_run(tracking_uri)
    traces = all_traces(client, child)
    judges = judge_traces(traces)
    models = {t.info.trace_id: t for t in traces if t not in judges}
    assert len(judges) == 6 and len(models) == 6
    for trace in judges:
        tags = trace.info.tags
        judged = models[tags["llmflow.judged_trace"]]
        assert tags["llmflow.judged_call"] == call_of(judged.info)
        assert tags["llmflow.scorer"] == "correct"
        # named as a judge's, for the graded variant and call; read as no call
        assert tags["mlflow.traceName"] == f"judge:correct | llama3.1 | {call_of(judged.info)}"
        (span,) = trace.data.spans
        assert span.span_type == "CHAT_MODEL"
        assert span.attributes["llmflow.variant_id"].startswith("judge:correct")
        assert span.attributes["mlflow.llm.cost"]["total_cost"] == 0.0  # local cost model
        assert "Rubric: Is the answer correct?" in json.dumps(span.inputs)
        assert '{"score": ' in span.outputs["choices"][0]["message"]["content"]
    # resume and re-scoring see the model calls only
    ids = child.info.experiment_id, child.info.run_id, child.data.tags["llmflow.variant_id"]
    by_call = traces_by_call(client, *ids)
    assert set(by_call.values()) == set(models)
    keys = existing_trace_keys(client, *ids)
    assert keys == {(case, r) for case in ("capital", "river") for r in range(3)}


def test_score_traces_the_judge_calls_it_makes_and_only_those(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    score = [*SCORE, "--tracking-uri", tracking_uri]
    same = CliRunner().invoke(app, score)
    assert "nothing changed" in same.output, same.output
    client, child = variant_run(tracking_uri)
    assert len(judge_traces(all_traces(client, child))) == 6
    stricter = {**judge(fake_ollama), "rubric": "Is the answer exactly right?"}
    model = {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}
    path = write_experiment(
        tmp_path, [model], name="edited.yaml", prompts=PROMPTS, scorers=[stricter]
    )
    changed = CliRunner().invoke(app, [*score, "--config", str(path)])
    assert changed.exit_code == 0, changed.output
    traces = all_traces(client, child)
    judges = judge_traces(traces)
    assert len(judges) == 12 and len(traces) == 18
    new = [t for t in judges if "exactly right" in json.dumps(t.data.spans[0].inputs)]
    models = {t.info.trace_id for t in traces if t not in judges}
    assert len(new) == 6 and {t.info.tags["llmflow.judged_trace"] for t in new} == models


def test_a_removed_check_leaves_compare_and_the_report(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    run(tmp_path, tracking_uri, fake_ollama, scorers=SCORERS, report=True)
    compare = ["compare", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    before = json.loads(CliRunner().invoke(app, [*compare, "-f", "json"]).output)
    assert "rouge-l" in before[0]["scores"]
    path = write_experiment(
        tmp_path,
        [{"provider": "ollama", "model": "llama3.1"}],
        name="edited.yaml",
        prompts=PROMPTS,
        scorers=SCORERS[:2],  # mentions-paris and rouge-l removed
    )
    score = [*SCORE, "--tracking-uri", tracking_uri, "--config", str(path)]
    first = CliRunner().invoke(app, score)
    assert first.exit_code == 0, first.output
    after = json.loads(CliRunner().invoke(app, [*compare, "-f", "json"]).output)
    assert set(after[0]["scores"]) == {"not-empty", "regex", "river.icontains"}
    assert "rouge-l" not in CliRunner().invoke(app, compare).output
    client, child = variant_run(tracking_uri)
    report = Path(client.download_artifacts(child.data.tags["mlflow.parentRunId"], "report"))
    text = (report / "report.md").read_text()
    assert "regex" in text and "rouge-l" not in text and "mentions-paris" not in text
    again = CliRunner().invoke(app, score)
    assert again.exit_code == 0 and "nothing changed" in again.output, again.output
