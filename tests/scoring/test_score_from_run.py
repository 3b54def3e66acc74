"""`llmflow score` from the run alone: run in one folder, score from another with nothing but
--tracking-uri, for a prompts file with per-row checks and for examples/classify.yaml's layout
(prompts and training data in data/, beside the file)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from tests.helpers import invoke_cli

EXAMPLES = Path(__file__).parents[2] / "examples"


def score_elsewhere(tmp_path: Path, uri: str, experiment: str, monkeypatch) -> str:
    """cd to an empty folder, then `llmflow score -e EXPERIMENT --tracking-uri URI`."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = invoke_cli("score", "-e", experiment, "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_prompts_file_is_scored_again_from_the_run(tmp_path, fake_ollama, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    rows = [
        {
            "id": "capital",
            "user": "Capital of France? Paris",
            "assert": [{"type": "icontains", "value": "paris"}],
        },
        {
            "id": "river",
            "user": "Longest river?",
            "assert": [{"type": "icontains", "value": "nile"}],
        },
    ]
    (project / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    document = {
        "experiment": "from-a-file",
        "prompts": "prompts.jsonl",
        "report": False,
        "models": [{"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}],
    }
    (project / "exp.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.chdir(project)
    ran = invoke_cli("run", "exp.yaml", "--tracking-uri", uri)
    assert ran.exit_code == 0, ran.output
    sent = len(fake_ollama.requests)
    scored = score_elsewhere(tmp_path, uri, "from-a-file", monkeypatch)
    assert "llama3.1: pass rate 50.0% (n=2)" in scored  # capital passes, river does not
    assert len(fake_ollama.requests) == sent


@pytest.fixture(scope="module")
def classify_run(tmp_path_factory, fake_ollama) -> dict:
    """examples/classify.yaml's layout and data, the fake server in place of the LLM entries,
    run from its folder with --out."""
    tmp = tmp_path_factory.mktemp("classify_layout")
    project = tmp / "project"
    shutil.copytree(EXAMPLES / "data", project / "data")
    document = yaml.safe_load((EXAMPLES / "classify.yaml").read_text())
    llm = {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}
    document["models"] = [document["models"][0], llm]
    (project / "classify.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    before = Path.cwd()
    os.chdir(project)
    try:
        ran = invoke_cli("run", "classify.yaml", "--tracking-uri", uri, "--out", "out")
    finally:
        os.chdir(before)
    assert ran.exit_code == 0, ran.output
    return {"tmp": tmp, "project": project, "uri": uri, "stderr": ran.stderr}


def test_the_classify_layout_is_scored_again_from_the_run(tmp_path, classify_run, monkeypatch):
    uri, project = classify_run["uri"], classify_run["project"]
    scored = score_elsewhere(tmp_path, uri, "ticket-routing", monkeypatch)
    assert "tfidf-logreg: pass rate" in scored and "(n=80)" in scored
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("ticket-routing")
    (sklearn,) = client.search_runs(
        [experiment.experiment_id], filter_string="params.provider = 'sklearn'"
    )
    train = (project / "data" / "tickets_train.csv").read_bytes()
    assert sklearn.data.params["train_sha256"] == hashlib.sha256(train).hexdigest()
    parent = sklearn.data.tags["mlflow.parentRunId"]
    training = json.loads(
        Path(client.download_artifacts(parent, "inputs/training.json", str(tmp_path))).read_text()
    )
    assert training == {
        "training": [{"file": "tickets_train.csv", "sha256": hashlib.sha256(train).hexdigest()}]
    }


def test_the_classifier_run_ends_with_its_verdict_and_where_the_report_is(classify_run):
    lines = classify_run["stderr"].strip().splitlines()
    client = MlflowClient(classify_run["uri"])
    experiment = client.get_experiment_by_name("ticket-routing")
    (parent,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`llmflow.kind` = 'experiment-run'"
    )
    run_id = parent.info.run_id
    verdict = next(i for i, line in enumerate(lines) if "the classic model" in line)
    assert lines[verdict + 1].startswith("Per 1,000 predictions:")
    out = classify_run["project"] / "out" / "report.html"
    place = f"Report: report/report.html and report.md in run {run_id}; also {out}"
    assert out.is_file() and place in lines[verdict + 2 :], lines
