import pytest

from llmflow.errors import ConfigError
from llmflow.gates import Gate, check


def test_rules_parse_and_check():
    metrics = {"latency_p95_s": 2.5, "error_rate": 0.0, "estimated_cost_usd": 0.02}
    passed, failures = check(
        ["latency_p95_s<3", "error_rate==0", "estimated_cost_usd<=0.01", "tokens>1"], metrics
    )
    assert passed == ["latency_p95_s<3", "error_rate==0"]
    assert failures == [
        "estimated_cost_usd<=0.01: estimated_cost_usd is 0.02",
        "tokens>1: tokens was not recorded for this version",
    ]


@pytest.mark.parametrize("rule", ["latency<", "p95 ~ 3", "3<latency", ""])
def test_bad_rules_say_how_to_write_one(rule):
    with pytest.raises(ConfigError, match="write METRIC OP NUMBER"):
        Gate.parse(rule)
