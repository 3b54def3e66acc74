"""llmflow's checks as MLflow scorers: `mlflow.genai.evaluate` on a stored run's traces gives
exactly the Feedback that `llmflow score` wrote on them (value, rationale, `passed`)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.errors import ConfigError
from llmflow.tracking.mlflow_scorers import as_mlflow_scorers
from tests.helpers import write_experiment
from tests.scoring.test_run_quality import PROMPTS, SCORERS, judge, run

SOURCE_RUN = "mlflow.assessment.sourceRunId"  # set on what mlflow.genai.evaluate logs


def verdicts(assessments, from_evaluate: bool) -> dict[str, tuple]:
    found = {}
    for a in assessments:
        if a.valid is False or (SOURCE_RUN in (a.metadata or {})) != from_evaluate:
            continue
        assert a.name not in found, f"two valid {a.name!r} assessments"
        found[a.name] = (a.value, a.rationale, a.metadata["passed"], a.source.source_type)
    return found


def test_evaluate_with_llmflow_scorers_reproduces_llmflow_score(
    tmp_path: Path, tracking_uri: str, fake_ollama, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # mlflow.genai.evaluate's run keeps its artifacts here
    run(tmp_path, tracking_uri, fake_ollama, scorers=SCORERS)
    # `llmflow score` with an edited file: a check added, that only a stored answer can feed
    model = {"provider": "ollama", "model": "llama3.1", "base_url": fake_ollama.url}
    checks = [*SCORERS, {"type": "latency", "threshold": 30}, judge(fake_ollama)]
    edited = write_experiment(
        tmp_path, [model], name="edited.yaml", prompts=PROMPTS, scorers=checks
    )
    score = ["score", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    scored = CliRunner().invoke(app, [*score, "--config", str(edited)])
    assert scored.exit_code == 0, scored.output

    scorers = as_mlflow_scorers(edited)
    names = [s.name for s in scorers]
    assert names == [
        "not-empty",
        "regex",
        "mentions-paris",
        "rouge-l",
        "latency",
        "river.icontains",
    ]
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("provider-comparison").experiment_id
    (child,) = client.search_runs([experiment_id], "tags.`llmflow.kind` = 'variant'")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    data = mlflow.search_traces(locations=[experiment_id], run_id=child.info.run_id)
    assert len(data) == 6
    mlflow.genai.evaluate(data=data, scorers=scorers)

    traces = client.search_traces(locations=[experiment_id], run_id=child.info.run_id)
    for trace in traces:
        wrote = verdicts(trace.info.assessments, from_evaluate=False)
        wrote.pop("correct")  # the judge's: not a scorer (it would ask the model again)
        assert verdicts(trace.info.assessments, from_evaluate=True) == wrote
        river = "river#" in trace.info.tags["mlflow.traceName"]
        assert "latency" in wrote and ("river.icontains" in wrote) == river


def test_an_experiment_without_checks_has_no_scorers(tmp_path: Path):
    path = write_experiment(tmp_path, [{"provider": "ollama", "model": "llama3.1"}])
    with pytest.raises(ConfigError, match="compare.yaml: no scorers"):
        as_mlflow_scorers(path)
