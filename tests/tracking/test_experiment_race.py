"""Several `llmflow run` processes starting at once: the experiment is created by one of them,
and the others use it instead of failing on "already exists"."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from llmflow.tracking.runs import RunStore


def test_an_experiment_created_meanwhile_by_another_client_is_used(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    store = RunStore(uri)
    real_get = store.client.get_experiment_by_name
    answers = iter([None])  # the first look finds nothing: the other client was not done yet

    def racing_get(name: str):
        answer = next(answers, "real")
        if answer is None:
            MlflowClient(uri).create_experiment(name)  # ... and now it is
            return None
        return real_get(name)

    store.client.get_experiment_by_name = racing_get
    experiment_id = store.experiment_id("shared")
    assert experiment_id == MlflowClient(uri).get_experiment_by_name("shared").experiment_id
