"""Metrics know their direction: gates on pass_rate, best_by picks the highest pass rate and
the lowest latency."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmflow import metrics
from llmflow.registry import gates, versions
from llmflow.registry.registration import Registration, _promote_best


def test_a_gate_on_pass_rate():
    assert gates.check(["pass_rate>=0.9"], {"pass_rate": 0.95}) == (["pass_rate>=0.9"], [])
    assert gates.check(["pass_rate>=0.9"], {"pass_rate": 0.5})[1] == [
        "pass_rate>=0.9: pass_rate is 0.5"
    ]
    assert gates.check(["pass_rate>=0.9"], {})[1] == [
        "pass_rate>=0.9: pass_rate was not recorded for this version"
    ]


@pytest.mark.parametrize(("metric", "winner"), [("pass_rate", "2"), ("latency_p50_s", "1")])
def test_best_by_follows_the_direction(monkeypatch, metric: str, winner: str):
    registered = [
        SimpleNamespace(
            name="m", version="1", tags={"metric.pass_rate": "0.5", "metric.latency_p50_s": "1.0"}
        ),
        SimpleNamespace(
            name="m", version="2", tags={"metric.pass_rate": "0.9", "metric.latency_p50_s": "2.0"}
        ),
    ]
    promoted = []
    monkeypatch.setattr(
        versions, "promote", lambda client, name, version, to: promoted.append(version)
    )
    result = Registration()
    _promote_best(None, registered, metric, result)
    assert promoted == [winner] and not result.problems


def test_pass_rate_is_recorded_on_versions():
    assert "pass_rate" in versions.RECORDED_METRICS
    assert metrics.higher_is_better("score.rouge-l") and not metrics.higher_is_better("error_rate")
