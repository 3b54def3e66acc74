"""Evaluation datasets and the Prompt Registry through `mlflow server` on PostgreSQL: a prompt
set pushed and run from the dataset, its variant registered and promoted, its prompt loaded
with `mlflow.genai.load_prompt` from a client that knows only the server's URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from llmflow.tracking.runs import KIND_PARENT, TAG_KIND
from tests.helpers import invoke_cli, write_experiment
from tests.server.servers import MlflowServer

pytestmark = pytest.mark.server

KEY = "canary-server-native-key-90d2"
PROMPTS = [
    {"id": "capital-fr", "user": "Capital of France?", "system": "One word.", "expected": "Paris"},
    {"id": "capital-jp", "user": "Capital of Japan?", "system": "One word.", "expected": "Tokyo"},
]


def ok(url: str, *args: str) -> str:
    result = invoke_cli(*args, "--tracking-uri", url, env={"NATIVE_KEY": KEY})
    assert result.exit_code == 0, result.output
    return result.output


def test_dataset_and_prompt_registry_through_the_server(
    tmp_path: Path, pg_mlflow: MlflowServer, fake_openai
):
    url = pg_mlflow.url
    fake_openai.api_key = KEY
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))
    assert "created dataset native-set" in ok(
        url, "dataset", "push", str(prompts_file), "--name", "native-set"
    )
    assert "0 written, 2 unchanged" in ok(
        url, "dataset", "push", str(prompts_file), "--name", "native-set"
    )
    model = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": f"{fake_openai.url}/v1",
        "api_key_env": "NATIVE_KEY",
        "temperature": 0.2,
        "max_tokens": 32,
        "register_as": "native_bot",
    }
    path = write_experiment(
        tmp_path,
        [model],
        experiment="native-server",
        prompts={"mlflow_dataset": "native-set"},
        scorers=[{"type": "icontains", "value": "{expected}"}],
    )
    ok(url, "run", str(path))
    client = MlflowClient(url)
    experiment_id = client.get_experiment_by_name("native-server").experiment_id
    (parent,) = client.search_runs([experiment_id], f"tags.`{TAG_KIND}` = '{KIND_PARENT}'")
    (dataset_input,) = parent.inputs.dataset_inputs
    assert dataset_input.dataset.name == "native-set"
    assert client.search_runs([experiment_id], f"dataset.digest = '{dataset_input.dataset.digest}'")
    for to in ("staging", "production"):
        ok(url, "promote", "native_bot", "-v", "1", "--to", to)

    code = (
        "import json, mlflow\n"
        "p = mlflow.genai.load_prompt('prompts:/native_bot.prompt@production')\n"
        "print(json.dumps([p.template, p.model_config]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": url},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    template, config = json.loads(done.stdout.strip().splitlines()[-1])
    assert template[0] == {"role": "system", "content": "One word."}
    assert {k: config[k] for k in ("provider", "model_name", "temperature", "max_tokens")} == {
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "temperature": 0.2,
        "max_tokens": 32,
    }
