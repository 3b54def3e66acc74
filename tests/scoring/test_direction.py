"""Metrics know their direction: gates on pass_rate, best_by picks the highest pass rate and
the lowest latency."""

from __future__ import annotations

import pytest

from llmflow import metrics
from llmflow.registry import gates, lookups, versions
from llmflow.registry.policy import Candidate, promote_best


def test_a_gate_on_pass_rate():
    assert gates.check(["pass_rate>=0.9"], {"pass_rate": 0.95}) == (["pass_rate>=0.9"], [])
    assert gates.check(["pass_rate>=0.9"], {"pass_rate": 0.5})[1] == [
        "pass_rate>=0.9: pass_rate is 0.5"
    ]
    assert gates.check(["pass_rate>=0.9"], {})[1] == [
        "pass_rate>=0.9: pass_rate was not recorded for this version"
    ]


@pytest.mark.parametrize(("metric", "winner"), [("pass_rate", "2"), ("latency_p50_s", "1")])
def test_best_by_follows_the_direction(tracking_uri, metric: str, winner: str):
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri)
    client.create_registered_model("m")
    for _ in range(2):
        client.create_model_version("m", source="file:///nowhere/model")
    measured = {
        "1": {"pass_rate": 0.5, "latency_p50_s": 1.0},
        "2": {"pass_rate": 0.9, "latency_p50_s": 2.0},
    }
    candidates = [
        Candidate(client.get_model_version("m", v), f"v{v}", found) for v, found in measured.items()
    ]
    notes, problems = promote_best(client, candidates, metric)
    assert lookups.alias_holder(client, "m", "staging") == winner and not problems


def test_pass_rate_is_recorded_on_versions():
    assert "pass_rate" in versions.RECORDED_METRICS
    assert metrics.higher_is_better("score.rouge-l") and not metrics.higher_is_better("error_rate")
