"""Promotion gates against the holder of an alias on the same prompts (non-inferiority)."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from llmflow.errors import ConfigError, PromotionRefused
from llmflow.registry import gates, lookups
from llmflow.registry import versions as registry_versions


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return MlflowClient(f"sqlite:///{tmp_path_factory.mktemp('gates') / 'mlflow.db'}")


def version_answering(client: MlflowClient, name: str, passed: dict[str, bool]) -> str:
    """A model version whose variant run answered each prompt once, passing or not."""
    experiment = client.get_experiment_by_name("gates") or client.get_experiment(
        client.create_experiment("gates")
    )
    run = client.create_run(experiment.experiment_id)
    columns = ["case", "repeat", "error", "cached", "latency_s", "cost_usd", "equals", "passed"]
    rows = [[case, 0, None, False, 0.5, None, ok, ok] for case, ok in passed.items()]
    client.log_dict(run.info.run_id, {"columns": columns, "data": rows}, "calls.json")
    if not client.search_registered_models(f"name = '{name}'"):
        client.create_registered_model(name)
    mv = client.create_model_version(name, source="file:///nowhere", run_id=run.info.run_id)
    return str(mv.version)


def prompts(n: int, passing: int, prefix: str = "p") -> dict[str, bool]:
    return {f"{prefix}{i}": i < passing for i in range(n)}


def test_a_paired_gate_parses_and_says_itself():
    gate = gates.parse("pass_rate >= @production - 0.02")
    assert isinstance(gate, gates.PairedGate)
    assert (gate.compared, gate.op, gate.alias, gate.margin) == (
        "pass_rate",
        ">=",
        "production",
        -0.02,
    )
    assert str(gate) == "pass_rate >= @production - 0.02"
    assert gates.parse("latency_p50_s<=@staging+0.1").compared == "latency_s"
    with pytest.raises(ConfigError, match="cannot be compared on the same prompts"):
        gates.parse("total_tokens >= @production")
    with pytest.raises(ConfigError, match="write METRIC OP @ALIAS"):
        gates.parse("pass_rate == @production")


def test_a_candidate_no_worse_than_production_is_promoted(client):
    name = "gate_better"
    held = version_answering(client, name, prompts(100, 90))
    registry_versions.promote(client, name, held, "production", force=True)
    candidate = version_answering(client, name, prompts(100, 100))
    record = registry_versions.promote(
        client, name, candidate, "staging", ["pass_rate >= @production - 0.02"]
    )
    (shown,) = record["gates"]
    assert shown.startswith("pass_rate >= @production - 0.02 (the one-sided 95% lower bound of")
    assert f"v{candidate} - v{held} (@production) on 100 prompts both answered" in shown


def test_a_worse_candidate_is_refused_with_its_bound(client):
    name = "gate_worse"
    held = version_answering(client, name, prompts(100, 95))
    registry_versions.promote(client, name, held, "production", force=True)
    candidate = version_answering(client, name, prompts(100, 80))
    with pytest.raises(PromotionRefused) as refused:
        registry_versions.promote(
            client, name, candidate, "staging", ["pass_rate >= @production - 0.02"]
        )
    (reason,) = refused.value.reasons
    assert "the one-sided 95% lower bound of" in reason and "not >= -2.0 pts" in reason
    assert lookups.alias_holder(client, name, "staging") is None


def test_no_common_prompts_is_said_and_nothing_promoted(client):
    name = "gate_apart"
    held = version_answering(client, name, prompts(50, 40, prefix="old"))
    registry_versions.promote(client, name, held, "production", force=True)
    candidate = version_answering(client, name, prompts(50, 45, prefix="new"))
    with pytest.raises(PromotionRefused) as refused:
        registry_versions.promote(client, name, candidate, "staging", ["pass_rate >= @production"])
    assert refused.value.reasons == [
        f"pass_rate >= @production: v{candidate} and v{held} (@production) answered no prompt "
        "in common with a pass_rate to compare: nothing can be concluded"
    ]


def test_no_holder_of_the_alias_is_said(client):
    name = "gate_alone"
    candidate = version_answering(client, name, prompts(10, 10))
    with pytest.raises(PromotionRefused, match="no version of gate_alone holds @production"):
        registry_versions.promote(client, name, candidate, "staging", ["pass_rate >= @production"])
