"""The Model Registry through `mlflow server` on PostgreSQL: register, promote with gates,
`models`, `models history`, and loading `models:/NAME@production` from a second process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow.cli import app
from tests.helpers import write_experiment
from tests.server.servers import MlflowServer

pytestmark = pytest.mark.server

KEY = "canary-server-registry-key-5e21"
NAME = "team_chat"


def invoke(url: str, *args: str):
    result = CliRunner().invoke(
        app, [*args, "--tracking-uri", url], env={"REG_KEY": KEY}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result


def _load_and_predict(url: str, prompt: str) -> list[str]:
    """A second process: only the server's URL and the provider's key in its environment."""
    code = (
        "import json, sys, mlflow\n"
        f"model = mlflow.pyfunc.load_model('models:/{NAME}@production')\n"
        "print(json.dumps(model.predict([sys.argv[1]])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, prompt],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": url, "REG_KEY": KEY},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_register_promote_and_load_through_the_server(
    tmp_path: Path, pg_mlflow: MlflowServer, fake_openai
):
    url = pg_mlflow.url
    fake_openai.api_key = KEY
    try:
        model = {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "REG_KEY",
        }
        path = write_experiment(tmp_path, [model], experiment="team-registry")
        invoke(url, "run", str(path))
        client = MlflowClient(url)
        experiment_id = client.get_experiment_by_name("team-registry").experiment_id
        (variant,) = client.search_runs([experiment_id], "tags.`llmflow.kind` = 'variant'")
        registered = invoke(url, "register", "--run", variant.info.run_id, "--name", NAME)
        assert f"registered {NAME} version 1" in registered.stdout

        invoke(url, "promote", NAME, "-v", "1", "--to", "staging", "--require", "error_rate==0")
        promoted = invoke(
            url, "promote", NAME, "-v", "1", "--to", "production",
            "--require", "latency_p95_s<30",
        )  # fmt: skip
        assert "passed: latency_p95_s<30" in promoted.stdout
        assert sorted(client.get_model_version(NAME, "1").aliases) == ["production", "staging"]

        listed = json.loads(invoke(url, "models", "--json").stdout)
        assert [sorted(m["aliases"]) for m in listed if m["name"] == NAME] == [
            ["production", "staging"]
        ]
        history = json.loads(invoke(url, "models", "history", NAME, "--json").stdout)
        assert [(h["version"], h["to"]) for h in history] == [("1", "staging"), ("1", "production")]

        assert _load_and_predict(url, "From afar") == ["Echo: From afar"]
    finally:
        fake_openai.api_key = "test-openai-key"
