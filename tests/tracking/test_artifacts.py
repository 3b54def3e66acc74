"""Reading a run's files back: a file the run lacks is None, every other failure is raised."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from llmflow.tracking.artifacts import has_artifact, read_json, read_text


@pytest.fixture
def run(tracking_uri: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(tracking_uri)
    run_id = client.create_run(client.create_experiment("artifacts")).info.run_id
    client.log_dict(run_id, {"columns": ["a"], "data": [[1]]}, "calls.json")
    client.log_text(run_id, "name: x\n", "config/exp.yaml")
    return client, run_id


def test_a_stored_file_is_read(run):
    client, run_id = run
    assert read_json(client, run_id, "calls.json") == {"columns": ["a"], "data": [[1]]}
    assert read_text(client, run_id, "config/exp.yaml") == "name: x\n"
    assert has_artifact(client, run_id, "config")


def test_a_file_the_run_lacks_is_none(run):
    client, run_id = run
    assert read_json(client, run_id, "classification.json") is None
    assert read_text(client, run_id, "config/other.yaml") is None
    assert read_text(client, run_id, "no_folder/exp.yaml") is None


def test_a_store_that_fails_is_not_taken_for_a_missing_file(run, monkeypatch):
    client, run_id = run

    def refused(*args, **kwargs):
        raise MlflowException("the tracking server refused the request")

    monkeypatch.setattr(client, "list_artifacts", refused)
    with pytest.raises(MlflowException, match="refused"):
        read_json(client, run_id, "calls.json")
