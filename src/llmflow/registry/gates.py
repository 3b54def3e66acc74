"""Promotion gates: rules such as `latency_p95_s<3` checked against a version's metrics. Pure."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from .. import metrics
from ..errors import ConfigError

# what registration records on every version, so the only names a gate can test
METRICS = metrics.gateable()

_OPERATORS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_RULE = re.compile(rf"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*({_NUMBER})\s*$")


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, rule: str) -> Gate:
        """The gate a rule says; ConfigError naming the rule when it is malformed or its metric
        is not one llmflow records."""
        match = _RULE.match(rule)
        if not match:
            raise ConfigError(
                f"gate {rule!r}: write METRIC OP NUMBER, e.g. latency_p95_s<3 or error_rate==0"
            )
        if match[1] not in METRICS:
            raise ConfigError(
                f"gate {rule!r}: unknown metric {match[1]}; one of {', '.join(METRICS)}"
            )
        return cls(match[1], match[2], float(match[3]))

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}"

    def failure(self, metrics: dict[str, float]) -> str | None:
        """None when the rule holds; else why not, in one line."""
        if self.metric not in metrics:
            return f"{self}: {self.metric} was not recorded for this version"
        value = metrics[self.metric]
        if _OPERATORS[self.op](value, self.threshold):
            return None
        return f"{self}: {self.metric} is {value:g}"


def parse_all(rules: list[str]) -> list[Gate]:
    """Every rule parsed, so that a malformed one fails before anything is looked up."""
    return [Gate.parse(rule) for rule in rules]


def check(rules: list[str], metrics: dict[str, float]) -> tuple[list[str], list[str]]:
    """(passed, failures) for the rules against the metrics."""
    passed, failures = [], []
    for gate in parse_all(rules):
        reason = gate.failure(metrics)
        if reason is None:
            passed.append(str(gate))
        else:
            failures.append(reason)
    return passed, failures
