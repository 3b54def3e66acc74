"""MLflow's built-in judges with a judge model from the experiment: offline, through MLflow's own
OpenAI-compatible adapter, on the fake server; their verdicts land on llmflow's traces."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from llmflow.config import load_experiment
from llmflow.errors import ConfigError
from llmflow.tracking.mlflow_judges import judge_endpoint, mlflow_judges
from tests.helpers import invoke_cli, write_experiment


def test_builtin_judges_grade_llmflow_traces_with_the_experiments_judge_model(
    tmp_path: Path, tracking_uri: str, fake_openai, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # mlflow.genai.evaluate's run keeps its artifacts here
    monkeypatch.delenv("OPENAI_API_BASE", raising=False)
    entry = {"provider": "openai", "base_url": f"{fake_openai.url}/v1", "api_key_env": "K"}
    models = [{**entry, "model": "gpt-4o-mini"}, {**entry, "model": "judge-model"}]
    path = write_experiment(tmp_path, models)
    monkeypatch.setenv("K", "test-openai-key")
    assert invoke_cli("run", str(path), "--tracking-uri", tracking_uri).exit_code == 0
    judge = load_experiment(path).config.models[1]
    judges = mlflow_judges(["RelevanceToQuery", "Safety", "Guidelines"], judge, "Be brief.")

    client = MlflowClient(tracking_uri)
    experiment_id = client.get_experiment_by_name("provider-comparison").experiment_id
    (child, _) = client.search_runs([experiment_id], "tags.`llmflow.kind` = 'variant'")
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_id=experiment_id)
    data = mlflow.search_traces(locations=[experiment_id], run_id=child.info.run_id)
    before = len(fake_openai.generation_requests())
    with judge_endpoint(judge):
        assert os.environ["OPENAI_API_BASE"] == f"{fake_openai.url}/v1"
        mlflow.genai.evaluate(data=data, scorers=judges)
    assert "OPENAI_API_BASE" not in os.environ  # restored
    asked = fake_openai.generation_requests()[before:]
    assert len(asked) == 3 * len(data)
    assert all(r.body["model"] == "judge-model" and r.body["response_format"] for r in asked)
    for trace in client.search_traces(locations=[experiment_id], run_id=child.info.run_id):
        verdicts = {
            a.name: (a.value, a.source.source_id)
            for a in trace.info.assessments
            if a.source.source_type == "LLM_JUDGE"
        }
        assert verdicts == {
            name: ("yes", "openai:/judge-model")
            for name in ("relevance_to_query", "safety", "guidelines")
        }


def test_a_judge_mlflow_cannot_call_here_is_refused_with_the_reason(tmp_path: Path):
    path = write_experiment(tmp_path, [{"provider": "gemini", "model": "gemini-2.5-flash"}])
    (gemini,) = load_experiment(path).config.models
    with pytest.raises(ConfigError, match="gemini/gemini-2.5-flash: .* OpenAI-compatible"):
        mlflow_judges(["Safety"], gemini)
    with pytest.raises(ConfigError, match="unknown MLflow judge 'Fairness'"):
        mlflow_judges(["Fairness"], gemini)
