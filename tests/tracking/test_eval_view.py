"""Each variant run carries its parent's dataset inputs (the prompt set), as the evaluation
views read a run's own inputs."""

from __future__ import annotations

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag

from llmflow.tracking.eval_view import share_datasets


def inputs_of(client: MlflowClient, run_id: str) -> list[tuple]:
    found = client.get_run(run_id).inputs.dataset_inputs
    return [(d.dataset.name, d.dataset.digest, [(t.key, t.value) for t in d.tags]) for d in found]


def test_variant_runs_get_the_parents_dataset_inputs(tracking_uri: str):
    client = MlflowClient(tracking_uri)
    experiment_id = client.create_experiment("datasets")
    parent = client.create_run(experiment_id).info.run_id
    variants = [client.create_run(experiment_id).info.run_id for _ in range(2)]
    share_datasets(client, parent, variants)  # a parent without inputs: nothing to share
    assert all(inputs_of(client, run) == [] for run in variants)
    prompts = Dataset("prompts.yaml", "0123456789abcdef", "local", '{"uri": "prompts.yaml"}')
    tag = InputTag("mlflow.data.context", "evaluation")
    client.log_inputs(parent, datasets=[DatasetInput(prompts, tags=[tag])])
    share_datasets(client, parent, variants)
    expected = [("prompts.yaml", "0123456789abcdef", [("mlflow.data.context", "evaluation")])]
    assert inputs_of(client, parent) == expected
    assert all(inputs_of(client, run) == expected for run in variants)
