"""`llmflow score` keeps every number true: all the metrics a check feeds recomputed together,
none left stale; judges never paid twice (traces gone, two scorers at once); a running run, or
a run its user may only read, refused in one line before anything is paid."""

from __future__ import annotations

import json
import math
from pathlib import Path

from mlflow import MlflowClient

from llmflow.metrics import BY_KEY
from llmflow.rescore_judges import scoring_lock
from tests.helpers import compare_rows, invoke_cli, ollama_models, write_experiment
from tests.scoring.test_judge_traces import variant_run
from tests.scoring.test_run_quality import PROMPTS, judge, run

LABELS = ["billing", "technical", "account", "other"]
TICKETS = [  # the fake answers "Echo: <ticket>": its label is the first one the ticket names
    {"id": "p1", "user": "I was charged twice, a billing problem", "expected": "billing"},
    {"id": "p2", "user": "The app crashes: technical issue", "expected": "technical"},
]


def score(tracking_uri: str, *args: str):
    return invoke_cli("score", "-e", "provider-comparison", "--tracking-uri", tracking_uri, *args)


def test_classification_metrics_follow_a_corrected_test_file(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    models = ollama_models(fake_ollama)
    path = write_experiment(tmp_path, models, task="classify", labels=LABELS, prompts=TICKETS)
    assert invoke_cli("run", str(path), "--tracking-uri", tracking_uri).exit_code == 0
    client, child = variant_run(tracking_uri)
    assert child.data.metrics["accuracy"] == 1.0
    corrected = [TICKETS[0], {**TICKETS[1], "expected": "account"}]
    edited = write_experiment(
        tmp_path, models, name="edited.yaml", task="classify", labels=LABELS, prompts=corrected
    )
    result = score(tracking_uri, "--config", str(edited))
    assert result.exit_code == 0, result.output
    metrics = client.get_run(child.info.run_id).data.metrics
    assert metrics["pass_rate"] == metrics["accuracy"] == 0.5
    assert metrics["macro_f1"] < 1.0 and metrics["n_unparsed"] == 0
    table = json.loads(
        Path(client.download_artifacts(child.info.run_id, "classification.json")).read_text()
    )
    account = next(row for row in table["per_label"] if row["label"] == "account")
    assert account["support"] == 1, "the per-label table follows the corrected file"


def test_checks_that_score_nothing_leave_no_old_pass_rate(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    capital = PROMPTS[0]
    run(tmp_path, tracking_uri, fake_ollama, prompts=[capital], scorers=[{"type": "rouge-l"}])
    client, child = variant_run(tracking_uri)
    assert child.data.metrics["pass_rate"] == 1.0  # capital's reference is its echo
    unreferenced = {k: v for k, v in capital.items() if k != "expected"}
    model = {"provider": "ollama", "model": "llama3.1"}
    edited = write_experiment(
        tmp_path, [model], name="edited.yaml", prompts=[unreferenced], scorers=[{"type": "rouge-l"}]
    )
    result = score(tracking_uri, "--config", str(edited))
    assert result.exit_code == 0, result.output
    assert "no scored call" in result.stdout
    metrics = client.get_run(child.info.run_id).data.metrics
    for name in ("pass_rate", "pass_rate_ci_low", "n_scored", "score.rouge-l"):
        assert math.isnan(metrics[name]), name
    (row,) = compare_rows()
    assert row["pass_rate"] is None and row["n_scored"] == 0, "compare shows no stale rate"


def test_score_pays_no_judge_again_once_the_traces_are_gone(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    client, child = variant_run(tracking_uri)
    rate = child.data.metrics["pass_rate"]
    traces = client.search_traces(locations=[child.info.experiment_id], max_results=100)
    client.delete_traces(child.info.experiment_id, trace_ids=[t.info.trace_id for t in traces])
    (tmp_path / ".llmflow").rename(tmp_path / "elsewhere")  # scored from another directory
    sent = len(fake_ollama.completed)
    for _ in range(2):
        result = score(tracking_uri)
        assert result.exit_code == 0, result.output
        assert len(fake_ollama.completed) == sent, "a judge answer was paid for again"
    metrics = client.get_run(child.info.run_id).data.metrics
    assert metrics["pass_rate"] == rate and metrics["judge_cost_usd"] == 0.0


def test_a_second_scorer_of_a_run_is_refused_in_one_line(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    (row,) = compare_rows()
    client = MlflowClient(tracking_uri)
    parent = client.get_run(row["run_id"]).data.tags["mlflow.parentRunId"]
    sent = len(fake_ollama.completed)
    with scoring_lock(tracking_uri, parent):
        result = score(tracking_uri)
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        f"run {parent} is being scored by another `llmflow score`: run this again once it has ended"
    ), result.stderr
    assert len(fake_ollama.completed) == sent
    assert score(tracking_uri).exit_code == 0  # released


def test_a_running_run_is_refused_in_one_line(tmp_path: Path, tracking_uri: str, fake_ollama):
    run(tmp_path, tracking_uri, fake_ollama, scorers=[judge(fake_ollama)])
    (row,) = compare_rows()
    client = MlflowClient(tracking_uri)
    parent = client.get_run(row["run_id"]).data.tags["mlflow.parentRunId"]
    client.update_run(parent, status="RUNNING")  # as a run killed by kill -9 stays
    result = score(tracking_uri)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"run {parent} is still RUNNING" in lines[0], result.stderr
    assert "nothing changed" not in result.output


def test_n_score_errors_counts_checks():
    assert BY_KEY["n_score_errors"].unit == "checks"
