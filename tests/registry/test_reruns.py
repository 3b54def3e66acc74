"""What a rerun does to the registry: no new version while the settings are unchanged, every
alias move said, an alias set by hand left where it is (and said), a tie said with its rule."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from llmflow.registry import versions
from llmflow.registry.lookups import alias_holder, versions_of
from llmflow.registry.policy import Candidate, promote_best
from tests.helpers import invoke_cli, write_experiment

PROMPTS = [{"id": "hi", "user": "Hi"}]


def run(tmp_path, tracking_uri, fake_ollama, temperature: float, **fields):
    model = {
        "provider": "ollama",
        "model": "llama3.1",
        "base_url": fake_ollama.url,
        "temperature": temperature,
        "register_as": "llm_rerun",
    }
    path = write_experiment(tmp_path, [model], prompts=PROMPTS, **fields)
    result = invoke_cli("run", str(path), "--tracking-uri", tracking_uri)
    assert result.exit_code == 0, result.output
    return result.stderr


def test_a_rerun_with_unchanged_settings_keeps_the_version(tmp_path, tracking_uri, fake_ollama):
    first = run(tmp_path, tracking_uri, fake_ollama, 0.2)
    assert "registered llm_rerun v1" in first
    again = run(tmp_path, tracking_uri, fake_ollama, 0.2)
    assert "registered llm_rerun" not in again
    assert "kept llm_rerun v1 for llama3.1: its settings are unchanged since run " in again
    client = MlflowClient(tracking_uri)
    assert [str(mv.version) for mv in versions_of(client, "llm_rerun")] == ["1"]
    changed = run(tmp_path, tracking_uri, fake_ollama, 0.9)
    assert "registered llm_rerun v2 (llama3.1)" in changed


def test_a_sweep_under_one_name_keeps_a_version_per_setting(tmp_path, tracking_uri, fake_ollama):
    sweep = {"sweep": {"temperature": [0.2, 0.9]}}
    first = run(tmp_path, tracking_uri, fake_ollama, 0.2, **sweep)
    assert first.count("registered llm_rerun v") == 2
    again = run(tmp_path, tracking_uri, fake_ollama, 0.2, **sweep)
    assert "registered llm_rerun" not in again and again.count("kept llm_rerun v") == 2
    assert len(versions_of(MlflowClient(tracking_uri), "llm_rerun")) == 2


def test_the_policy_says_each_move_and_leaves_an_alias_set_by_hand(
    tmp_path, tracking_uri, fake_ollama
):
    policy = {"promote": {"best_by": "error_rate"}}
    first = run(tmp_path, tracking_uri, fake_ollama, 0.2, **policy)
    assert "llm_rerun staging: v1 (best error_rate 0, llama3.1)" in first
    second = run(tmp_path, tracking_uri, fake_ollama, 0.5, **policy)
    assert "llm_rerun staging: v1 -> v2 (best error_rate 0, llama3.1)" in second
    by_hand = invoke_cli(
        "promote", "llm_rerun", "-v", "1", "--to", "staging", "--tracking-uri", tracking_uri
    )
    assert by_hand.exit_code == 0, by_hand.output
    third = run(tmp_path, tracking_uri, fake_ollama, 0.9, **policy)
    assert "registered llm_rerun v3" in third
    assert "llm_rerun staging stays v1 (set by " in third
    assert "with llmflow promote): a run's promote: policy leaves an alias set by hand; " in third
    assert "`llmflow promote llm_rerun -v 3 --to staging` moves it" in third
    assert alias_holder(MlflowClient(tracking_uri), "llm_rerun", "staging") == "1"


@pytest.fixture
def client(tracking_uri):
    client = MlflowClient(tracking_uri)
    for name in ("a", "b", "c"):
        client.create_registered_model(name)
        client.create_model_version(name, source="file:///nowhere/model")
    return client


def candidate(client, name: str, **metrics: float) -> Candidate:
    return Candidate(client.get_model_version(name, "1"), f"variant-{name}", metrics)


def test_a_tie_is_said_with_the_rule_that_broke_it(client):
    tied = [
        candidate(client, "a", pass_rate=0.4, latency_p50_s=2.0),
        candidate(client, "b", pass_rate=0.4, latency_p50_s=1.0),
        candidate(client, "c", pass_rate=0.2, latency_p50_s=0.5),
    ]
    notes, problems = promote_best(client, tied, "pass_rate")
    assert not problems
    assert notes[0] == (
        "promote.best_by: 2 variants tie on pass_rate = 0.4 (a v1 (variant-a), b v1 "
        "(variant-b)); the tie is broken by higher accuracy, then lower latency_p50_s, then "
        "lower estimated_cost_usd, then the order of the file: b v1 (variant-b)"
    )
    assert notes[1] == "b staging: v1 (best pass_rate 0.4, variant-b)"
    assert alias_holder(client, "b", "staging") == "1"
    history = versions.history(client, "b")
    assert history[-1]["via"] == versions.BY_POLICY


def test_the_policy_checks_this_files_gates_on_this_runs_numbers(
    tmp_path, tracking_uri, fake_ollama
):
    """A version kept from an earlier run is not promoted under that run's gates: the file's
    gates now, on this run's metrics."""
    loose = {"promote": {"best_by": "error_rate", "require": ["error_rate<=0.5"]}}
    run(tmp_path, tracking_uri, fake_ollama, 0.2, **loose)
    client = MlflowClient(tracking_uri)
    client.delete_registered_model_alias("llm_rerun", "staging")
    strict = {"promote": {"best_by": "error_rate", "require": ["n_calls>=5"]}}  # 1 call made
    again = run(tmp_path, tracking_uri, fake_ollama, 0.2, **strict)
    assert "kept llm_rerun v1" in again
    assert "llm_rerun v1 not promoted: n_calls>=5: n_calls is 1" in again
    assert alias_holder(client, "llm_rerun", "staging") is None
