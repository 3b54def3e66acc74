import pytest

from llmflow.errors import ConfigError
from llmflow.registry.gates import Gate, check


def test_rules_parse_and_check():
    metrics = {"latency_p95_s": 2.5, "error_rate": 0.0, "estimated_cost_usd": 0.02}
    passed, failures = check(
        ["latency_p95_s<3", "error_rate==0", "estimated_cost_usd<=0.01", "ttft_p50_s<1"], metrics
    )
    assert passed == ["latency_p95_s<3", "error_rate==0"]
    assert failures == [
        "estimated_cost_usd<=0.01: estimated_cost_usd is 0.02",
        "ttft_p50_s<1: ttft_p50_s was not recorded for this version",
    ]


@pytest.mark.parametrize(
    ("rule", "threshold"),
    [("error_rate<=.5", 0.5), ("total_tokens>1e3", 1000.0), ("latency_s<+2.", 2.0)],
)
def test_numbers_in_any_usual_spelling(rule, threshold):
    assert Gate.parse(rule).threshold == threshold


@pytest.mark.parametrize(
    "rule", ["latency_s<", "p95 ~ 3", "3<latency_s", "", "error_rate<1.2.3", "error_rate 0", "."]
)
def test_bad_rules_say_how_to_write_one(rule):
    with pytest.raises(ConfigError, match="write METRIC OP NUMBER"):
        Gate.parse(rule)


def test_an_unknown_metric_is_a_mistake_not_a_refusal():
    with pytest.raises(ConfigError, match=r"unknown metric latncy_p95_s; one of n_calls, n_errors"):
        Gate.parse("latncy_p95_s<3")
