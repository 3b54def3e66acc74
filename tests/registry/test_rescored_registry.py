"""After `llmflow score` moves a variant's pass rate, the versions registered from it record the
new numbers: `llmflow models` shows them and promotion gates read them, never the stale ones."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from tests.helpers import invoke_cli, write_experiment

PROMPTS = [{"id": "capital", "user": "Capital of France? Paris"}, {"id": "hi", "user": "Hi"}]


def test_a_rescore_updates_what_models_and_gates_read(tmp_path, tracking_uri, fake_ollama):
    model = {
        "provider": "ollama",
        "model": "llama3.1",
        "base_url": fake_ollama.url,
        "register_as": "llm_rescored",
    }
    passing = [{"type": "regex", "value": "^Echo"}]  # every echo passes
    path = write_experiment(tmp_path, [model], prompts=PROMPTS, scorers=passing)
    ran = invoke_cli("run", str(path), "--tracking-uri", tracking_uri)
    assert ran.exit_code == 0, ran.output
    listed = json.loads(invoke_cli("models", "--json", "--tracking-uri", tracking_uri).stdout)
    assert listed[0]["metrics"]["pass_rate"] == 1.0

    failing = [{"type": "icontains", "value": "nile"}]  # no echo passes
    edited = write_experiment(
        tmp_path, [model], name="edited.yaml", prompts=PROMPTS, scorers=failing
    )
    score = ("score", "-e", "provider-comparison", "--config", str(edited))
    scored = invoke_cli(*score, "--tracking-uri", tracking_uri)
    assert scored.exit_code == 0, scored.output
    assert "registry: llm_rescored v1 now records pass_rate 1 -> 0" in scored.stdout

    listed = json.loads(invoke_cli("models", "--json", "--tracking-uri", tracking_uri).stdout)
    assert listed[0]["metrics"]["pass_rate"] == 0.0
    gate = invoke_cli(
        "promote",
        "llm_rescored",
        "-v",
        "1",
        "--to",
        "staging",
        "--require",
        "pass_rate>=0.3",
        "--tracking-uri",
        tracking_uri,
    )
    assert gate.exit_code == 1 and "pass_rate>=0.3: pass_rate is 0" in gate.stderr
    mv = MlflowClient(tracking_uri).get_model_version("llm_rescored", "1")
    (record,) = [json.loads(v) for k, v in mv.tags.items() if k.startswith("llmflow.rescored.")]
    assert record["changed"]["pass_rate"] == [1.0, 0.0]

    again = invoke_cli(*score, "--tracking-uri", tracking_uri)
    assert again.exit_code == 0 and "registry:" not in again.stdout, again.output
