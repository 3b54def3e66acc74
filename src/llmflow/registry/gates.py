"""Promotion gates: rules such as `latency_p95_s<3` checked against a version's metrics, and
rules against the current holder of an alias on the same prompts, such as
`pass_rate >= @production - 0.02` (paired_gates.py checks those). Pure."""

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
_PAIRED_RULE = re.compile(
    rf"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|<|>)\s*@([A-Za-z_][\w-]*)\s*(?:([-+])\s*({_NUMBER}))?\s*$"
)
# what a paired gate may compare, and the pairwise metric it reads (report/pairs.py)
PAIRED_METRICS = {
    "pass_rate": "pass_rate",
    "accuracy": "accuracy",
    "latency_s": "latency_s",
    "latency_p50_s": "latency_s",
    "cost_per_call_usd": "cost_per_call_usd",
}


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, rule: str) -> Gate:
        """The gate a rule says; ConfigError naming the rule when it is malformed or its metric
        is not one llmflow records."""
        if "@" in rule:
            raise ConfigError(f"gate {rule!r} compares with an alias's holder: use parse()")
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


@dataclass(frozen=True)
class PairedGate:
    """`METRIC OP @ALIAS [+|- MARGIN]`: the candidate against the version holding ALIAS, on the
    prompts both answered. `>=` holds when the one-sided 95% lower bound of the paired
    difference (candidate - holder) is at least MARGIN (non-inferiority: `pass_rate >=
    @production - 0.02`); `<=` when the upper bound is at most MARGIN (`latency_s <= @production
    + 0.05`). Latency's difference is the median per-prompt one, in seconds."""

    metric: str
    op: str
    alias: str
    margin: float

    @classmethod
    def parse(cls, rule: str) -> PairedGate:
        match = _PAIRED_RULE.match(rule)
        if not match:
            raise ConfigError(
                f"gate {rule!r}: write METRIC OP @ALIAS [+|- NUMBER], "
                "e.g. pass_rate >= @production - 0.02"
            )
        if match[1] not in PAIRED_METRICS:
            raise ConfigError(
                f"gate {rule!r}: {match[1]} cannot be compared on the same prompts; one of "
                f"{', '.join(PAIRED_METRICS)}"
            )
        margin = float(match[5]) * (-1 if match[4] == "-" else 1) if match[5] else 0.0
        return cls(match[1], match[2], match[3], margin)

    @property
    def compared(self) -> str:
        return PAIRED_METRICS[self.metric]

    @property
    def lower_bound(self) -> bool:
        """Whether the rule tests the lower bound of the difference (>=, >) or the upper one."""
        return self.op in (">=", ">")

    def holds(self, bound: float) -> bool:
        return _OPERATORS[self.op](bound, self.margin)

    def __str__(self) -> str:
        margin = f" {'-' if self.margin < 0 else '+'} {abs(self.margin):g}" if self.margin else ""
        return f"{self.metric} {self.op} @{self.alias}{margin}"


def parse(rule: str) -> Gate | PairedGate:
    return PairedGate.parse(rule) if "@" in rule else Gate.parse(rule)


def parse_all(rules: list[str]) -> list[Gate | PairedGate]:
    """Every rule parsed, so that a malformed one fails before anything is looked up."""
    return [parse(rule) for rule in rules]


def paired(rules: list[str]) -> list[PairedGate]:
    return [g for g in parse_all(rules) if isinstance(g, PairedGate)]


def check(rules: list[str], metrics: dict[str, float]) -> tuple[list[str], list[str]]:
    """(passed, failures) for the rules against the metrics; paired gates are left to
    paired_gates.check."""
    passed, failures = [], []
    for gate in (g for g in parse_all(rules) if isinstance(g, Gate)):
        reason = gate.failure(metrics)
        if reason is None:
            passed.append(str(gate))
        else:
            failures.append(reason)
    return passed, failures
