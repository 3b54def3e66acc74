"""The Prompt Registry beside the Model Registry: a registered variant's prompt and settings,
its aliases moved with the model's, and an experiment that takes its system prompt from it."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from llmflow.tracking.runs import KIND_PARENT, TAG_KIND
from llmflow.tracking.schema import PROMPT_TAG
from tests.helpers import invoke_cli

KEY = "canary-prompt-registry-key-31c8"
SYSTEM = "You answer questions about invoices in one sentence."


def experiment(tmp_path: Path, fake_openai, name: str, **fields) -> Path:
    entry = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": f"{fake_openai.url}/v1",
        "api_key_env": "PR_KEY",
        "temperature": 0.3,
        "max_tokens": 64,
        "stop": ["###"],
        "seed": 7,
        "register_as": "invoices_bot",
    }
    document = {
        "experiment": name,
        "prompts": [{"id": "due", "user": "When is invoice 12 due?"}],
        "models": [entry],
        "report": False,
        **fields,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def ok(*args: str) -> str:
    result = invoke_cli(*args, env={"PR_KEY": KEY})
    assert result.exit_code == 0, result.output
    return result.output


def test_a_promoted_variant_loads_from_the_prompt_registry(tmp_path, tracking_uri, fake_openai):
    fake_openai.api_key = KEY
    path = experiment(tmp_path, fake_openai, "invoices", system=SYSTEM)
    ok("run", str(path), "--tracking-uri", tracking_uri)
    client = MlflowClient(tracking_uri)
    assert client.get_model_version("invoices_bot", "1").tags[PROMPT_TAG] == (
        "prompts:/invoices_bot.prompt/1"
    )
    for to in ("staging", "production"):
        ok("promote", "invoices_bot", "-v", "1", "--to", to, "--tracking-uri", tracking_uri)

    mlflow.set_tracking_uri(tracking_uri)
    try:
        prompt = mlflow.genai.load_prompt("prompts:/invoices_bot.prompt@production")
    finally:
        mlflow.set_tracking_uri(None)
    assert prompt.template == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "{{user}}"},
    ]
    assert prompt.model_config == {
        "provider": "openai",
        "model_name": "gpt-4o-mini",
        "temperature": 0.3,
        "max_tokens": 64,
        "stop_sequences": ["###"],
        "extra_params": {"seed": 7, "stream": True, "base_url": f"{fake_openai.url}/v1"},
    }
    listed = ok("models", "--json", "--tracking-uri", tracking_uri)
    assert "invoices_bot.prompt" not in listed  # a prompt is no registered model to list

    # another experiment takes its system prompt from the registry, and records the version
    reuse = experiment(
        tmp_path, fake_openai, "invoices-reuse", system="prompts:/invoices_bot.prompt@production"
    )
    ok("run", str(reuse), "--tracking-uri", tracking_uri)
    experiment_id = client.get_experiment_by_name("invoices-reuse").experiment_id
    (parent,) = client.search_runs([experiment_id], f"tags.`{TAG_KIND}` = '{KIND_PARENT}'")
    assert parent.data.tags["llmflow.mlflow_source.system"] == "prompts:/invoices_bot.prompt/1"
    (trace,) = [
        t
        for t in client.search_traces(locations=[experiment_id])
        if "llmflow.role" not in t.info.tags
    ]
    assert trace.data.spans[0].inputs["messages"][0] == {"role": "system", "content": SYSTEM}

    # production sent back to staging: the prompt loses its production alias too
    ok("promote", "invoices_bot", "-v", "1", "--to", "staging", "--tracking-uri", tracking_uri)
    assert client.get_prompt_version_by_alias("invoices_bot.prompt", "staging").version == 1
    with pytest.raises(Exception, match="production"):
        client.get_prompt_version_by_alias("invoices_bot.prompt", "production")


def test_a_registry_prompt_that_is_not_there_is_one_line(tmp_path, tracking_uri, fake_openai):
    path = experiment(tmp_path, fake_openai, "nowhere", system="prompts:/missing@production")
    MlflowClient(tracking_uri).search_experiments()  # the store exists, not the prompt
    result = invoke_cli("run", str(path), "--tracking-uri", tracking_uri)
    assert result.exit_code == 2, result.output
    assert "system: cannot read 'prompts:/missing@production'" in " ".join(result.output.split())


def test_a_prompt_the_registry_refuses_leaves_the_model_version(
    tmp_path, tracking_uri, fake_openai
):
    fake_openai.api_key = KEY
    path = experiment(tmp_path, fake_openai, "spaced", system=SYSTEM)
    document = yaml.safe_load(path.read_text())
    document["models"][0]["register_as"] = "invoices bot"  # a model name; no prompt name
    path.write_text(yaml.safe_dump(document))
    output = " ".join(ok("run", str(path), "--tracking-uri", tracking_uri).split())
    assert "invoices bot v1: its prompt was not registered" in output
    mv = MlflowClient(tracking_uri).get_model_version("invoices bot", "1")
    assert PROMPT_TAG not in mv.tags and mv.tags["llmflow.prompt_error"]
    ok("promote", "invoices bot", "-v", "1", "--to", "staging", "--tracking-uri", tracking_uri)
