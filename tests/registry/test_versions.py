"""run -> register -> staging -> production -> load by alias -> predict, against the fakes."""

import json
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from tests.helpers import invoke_cli, serve_and_ask, write_experiment

KEY = "canary-registry-key-31d9"


@pytest.fixture
def registered(tmp_path: Path, tracking_uri: str, fake_openai):
    fake_openai.api_key = KEY
    models = [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "REG_KEY",
            "temperature": 0.3,
            "register_as": "llm_openai_chat",
        }
    ]
    prompts = [{"id": "hello", "system": "Be brief.", "user": "Hello"}]
    path = write_experiment(
        tmp_path, models, prompts=prompts, promote={"require": ["error_rate==0"]}
    )
    mlflow.set_tracking_uri(None)  # as in a fresh process
    result = invoke_cli("run", str(path), env={"REG_KEY": KEY})
    assert result.exit_code == 0, result.output
    assert "registered llm_openai_chat v1" in result.stderr
    assert not mlflow.is_tracking_uri_set(), "llmflow must leave the global tracking URI alone"
    mlflow.set_tracking_uri(tracking_uri)
    yield MlflowClient(tracking_uri)
    fake_openai.api_key = "test-openai-key"


def state(client: MlflowClient, name: str = "llm_openai_chat"):
    mv = client.get_model_version(name, "1")
    return sorted(mv.aliases), mv.current_stage


def test_register_promote_load_and_predict(registered, fake_openai, monkeypatch):
    client = registered
    mv = client.get_model_version("llm_openai_chat", "1")
    assert mv.tags["llmflow.provider"] == "openai"
    assert float(mv.tags["metric.error_rate"]) == 0.0
    assert "metric.latency_p95_s" in mv.tags and mv.tags["llmflow.config_sha256"]
    assert json.loads(mv.tags["llmflow.gates"]) == ["error_rate==0"]

    refused = invoke_cli("promote", "llm_openai_chat", "-v", "1", "--to", "production")
    assert refused.exit_code == 1 and "never been in staging" in refused.stderr
    assert state(client) == ([], "None")

    assert invoke_cli("promote", "llm_openai_chat", "-v", "1", "--to", "staging").exit_code == 0
    assert state(client) == (["staging"], "Staging")
    promoted = invoke_cli(
        "promote",
        "llm_openai_chat",
        "-v",
        "1",
        "--to",
        "production",
        "--require",
        "latency_p95_s<30",
    )
    assert promoted.exit_code == 0, promoted.output
    assert "passed: latency_p95_s<30, error_rate==0" in promoted.stdout
    assert state(client) == (["production", "staging"], "Production")

    monkeypatch.setenv("REG_KEY", KEY)
    model = mlflow.pyfunc.load_model("models:/llm_openai_chat@production")
    assert model.predict("Hi there") == ["Echo: Hi there"]
    assert model.predict(["a", "b"]) == ["Echo: a", "Echo: b"]
    assert model.predict([{"role": "user", "content": "chat"}]) == ["Echo: chat"]
    import pandas as pd

    assert model.predict(pd.DataFrame({"prompt": ["x"]})) == ["Echo: x"]
    sent = fake_openai.generation_requests()[-1].body
    assert sent["temperature"] == 0.3
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}

    history = json.loads(invoke_cli("models", "history", "llm_openai_chat", "--json").stdout)
    assert [(h["version"], h["to"]) for h in history] == [("1", "staging"), ("1", "production")]
    assert history[1]["gates"] == ["latency_p95_s<30", "error_rate==0"]
    listed = json.loads(invoke_cli("models", "--json").stdout)
    assert sorted(listed[0]["aliases"]) == ["production", "staging"]
    assert listed[0]["stage"] == "Production" and listed[0]["provider"] == "openai"


def test_failed_gate_changes_nothing(registered):
    client = registered
    result = invoke_cli(
        "promote",
        "llm_openai_chat",
        "-v",
        "1",
        "--to",
        "staging",
        "--require",
        "latency_p95_s<0.000001",
        "--require",
        "total_tokens>=1",
    )
    assert result.exit_code == 1
    assert result.stderr.count("refused:") == 1 and "latency_p95_s<1e-06" in result.stderr
    assert state(client) == ([], "None")
    assert json.loads(invoke_cli("models", "history", "llm_openai_chat", "--json").stdout) == []


def test_promoting_a_new_version_archives_the_old(registered, tmp_path):
    client = registered
    source = client.get_model_version("llm_openai_chat", "1").tags["llmflow.source_run_id"]
    again = invoke_cli("register", "--run", source)
    assert again.exit_code == 0 and "version 2" in again.stdout
    for version in ("1", "2"):
        assert (
            invoke_cli("promote", "llm_openai_chat", "-v", version, "--to", "staging").exit_code
            == 0
        )
        assert (
            invoke_cli("promote", "llm_openai_chat", "-v", version, "--to", "production").exit_code
            == 0
        )
    assert client.get_model_version("llm_openai_chat", "1").current_stage == "Archived"
    assert str(client.get_model_version_by_alias("llm_openai_chat", "production").version) == "2"
    history = json.loads(invoke_cli("models", "history", "llm_openai_chat", "--json").stdout)
    assert history[-1]["previous_version"] == "1"


def test_no_key_in_the_logged_model(registered, tmp_path):
    client = registered
    mv = client.get_model_version("llm_openai_chat", "1")
    local = Path(mlflow.artifacts.download_artifacts(mv.source, dst_path=str(tmp_path / "model")))
    files = [p for p in local.rglob("*") if p.is_file()]
    assert any(p.name == "MLmodel" for p in files)
    assert any("set_model" in p.read_text(errors="ignore") for p in files if p.suffix == ".py")
    for file in files:
        assert KEY.encode() not in file.read_bytes(), file
    mlmodel = (local / "MLmodel").read_text()
    assert "REG_KEY" in mlmodel  # the variable's name travels, its value does not


def test_missing_key_at_load_says_which_variable(registered, monkeypatch):
    monkeypatch.delenv("REG_KEY", raising=False)
    with pytest.raises(Exception, match="REG_KEY is not set"):
        mlflow.pyfunc.load_model("models:/llm_openai_chat/1")


def test_mlflow_models_serve_answers(registered, tracking_uri):
    import os

    registered.set_registered_model_alias("llm_openai_chat", "production", "1")
    env = {**os.environ, "REG_KEY": KEY}
    answer = serve_and_ask(tracking_uri, "models:/llm_openai_chat@production", env, "Served?")
    assert answer == ["Echo: Served?"]


PASSWORD = "canary-url-password-77c1"


def test_no_url_credentials_in_the_registered_model(tmp_path, tracking_uri, fake_openai):
    fake_openai.api_key = None  # the fake checks no key; the URL's userinfo is the secret here
    host = fake_openai.url.removeprefix("http://")
    models = [
        {
            "provider": "openai",
            "model": "gpt-4o-mini",
            "base_url": f"http://llmuser:{PASSWORD}@{host}/v1",
            "register_as": "llm_userinfo",
        }
    ]
    result = invoke_cli("run", str(write_experiment(tmp_path, models)))
    fake_openai.api_key = "test-openai-key"
    assert result.exit_code == 0, result.output
    mlflow.set_tracking_uri(tracking_uri)  # for download_artifacts of a models:/ URI
    client = MlflowClient(tracking_uri)
    mv = client.get_model_version("llm_userinfo", "1")
    source = client.get_run(mv.tags["llmflow.source_run_id"])
    logged = client.search_logged_models([source.info.experiment_id])
    assert logged
    local = Path(mlflow.artifacts.download_artifacts(mv.source, dst_path=str(tmp_path / "model")))
    stored = {
        "run params": json.dumps(source.data.params),
        "run tags": json.dumps(source.data.tags),
        "logged model": json.dumps([[m.params, m.tags] for m in logged]),
        "version tags": json.dumps(mv.tags),
        "model tags": json.dumps(client.get_registered_model("llm_userinfo").tags),
        "prompt": json.dumps(client.load_prompt("prompts:/llm_userinfo.prompt/1").model_config),
        **{str(p): p.read_text(errors="ignore") for p in local.rglob("*") if p.is_file()},
    }
    assert {where for where, text in stored.items() if PASSWORD in text} == set()
    assert f"http://{host}/v1" in (local / "MLmodel").read_text()
