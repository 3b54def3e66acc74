"""The `llmflow compare -f json` contract: the keys of a row and the type of each value, on a
stored run, as tests/report/golden/compare_json_row.json keeps them. A change here is a change
for every script that reads the comparison: update the golden file on purpose, never by habit."""

import json
import os
from pathlib import Path

from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from llmflow.experiment import RunRequest, run_experiment
from llmflow.tracking.schema import TAG_COST_KIND
from tests.helpers import write_experiment
from tests.tracking.test_sqlite_read import ollama_and_openai

GOLDEN = Path(__file__).parent / "golden" / "compare_json_row.json"


def _types(row: dict) -> dict[str, str]:
    return {key: type(value).__name__ for key, value in row.items()}


def test_compare_json_keeps_its_keys_and_value_types(
    tmp_path: Path, tracking_uri: str, fake_ollama, fake_openai, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-key")
    models = ollama_and_openai(fake_ollama, fake_openai)
    path = write_experiment(
        tmp_path,
        models,
        sweep={"temperature": [0.0, 0.5]},
        scorers=[{"type": "icontains", "value": "mlflow"}],
    )
    run_experiment(RunRequest(experiment_file=path, tracking_uri=tracking_uri))
    result = CliRunner().invoke(
        app, ["compare", "-e", "provider-comparison", "--tracking-uri", tracking_uri, "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    found = {row["variant_id"]: _types(row) for row in rows}
    if os.environ.get("LLMFLOW_WRITE_GOLDEN"):  # to change the contract on purpose
        GOLDEN.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    assert found == json.loads(GOLDEN.read_text(encoding="utf-8"))
    kinds = {row["variant_id"]: row["cost_kind"] for row in rows}
    assert kinds == {
        "gpt-4o-mini[temperature=0]": "priced",
        "gpt-4o-mini[temperature=0.5]": "priced",
        "llama3.1[temperature=0]": "local",
        "llama3.1[temperature=0.5]": "local",
    }
    client = MlflowClient(tracking_uri)  # said by the run itself, not guessed from a param
    for row in rows:
        assert client.get_run(row["run_id"]).data.tags[TAG_COST_KIND] == row["cost_kind"]
