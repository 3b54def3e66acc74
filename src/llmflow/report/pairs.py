"""Pairwise verdicts: every two variants compared on the prompts both answered.

A variant's calls become per-prompt evidence (`Evidence`: for each metric, each prompt's values
over its repeats); two variants are compared on the prompts both have (`significance` picks the
test), each metric's p-values over all the pairs of the sweep are adjusted by Holm, and a
verdict says "better" only when the adjusted p-value is under 0.05. A pair found not
distinguishable carries what the run could have detected and how many prompts the observed
difference would need (`power`). Variants that did not answer the same prompts (fewer than half
of the smaller one's in common) are compared unpaired, and the pair says so.

Metrics compared: pass_rate (every check of a call passed), accuracy (task classify: the label
check), score.<name> (each check's values), latency_s (per-prompt median latency of the timed
calls: the difference is the median per-prompt difference, in seconds) and cost_per_call_usd
(priced calls: the difference is the median per-prompt one). "Better" is a higher pass rate,
accuracy or score, a lower latency or cost.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeGuard

import numpy as np

from .. import power, significance
from ..metrics import higher_is_better
from ..stats import clustered_rate_interval
from ..tracking.calls_table import CALL_COLUMNS

ALPHA = 0.05
LATENCY = "latency_s"
COST = "cost_per_call_usd"
LABEL_COLUMN = "label"  # task classify: the label check's column, whose pass rate is accuracy
# calls.json columns that are not checks (scoring/tables.py adds a column per check, `passed`)
_CALL_COLUMNS = frozenset({*CALL_COLUMNS, "passed"})
NOT_DISTINGUISHABLE = "not_distinguishable"


@dataclass
class Evidence:
    """One variant's per-prompt values: metric -> prompt (case id) -> one value per repeat."""

    label: str
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    _reduced: dict[str, dict[str, float]] = field(default_factory=dict, repr=False)

    def add(self, metric: str, case: str, value: float) -> None:
        self.values.setdefault(metric, {}).setdefault(case, []).append(value)
        self._reduced.pop(metric, None)

    def per_prompt(self, metric: str) -> dict[str, float]:
        """One value per prompt: the median of its repeats' latencies, else their mean."""
        if metric not in self._reduced:
            reduce = statistics.median if metric == LATENCY else statistics.fmean
            self._reduced[metric] = {c: reduce(v) for c, v in self.values[metric].items()}
        return self._reduced[metric]


PRICES = ("priced", "batch")  # a batch price is a price (batch/pricing.py)


def evidence(label: str, rows: Iterable[dict[str, Any]], classification: bool = False) -> Evidence:
    """A variant's evidence from its calls table (calls.json rows). Warmups are left out; a
    failed call counts for no metric (failures are error_rate's); cached answers have no
    latency or cost of their own; cost is compared only when every measured call is priced
    (a local model's $0 at no hourly rate is not a price). The rows are read once, one at a
    time (EvidenceBuilder): a 100,000-call table need not be held as dicts."""
    builder = EvidenceBuilder(label, classification)
    for row in rows:
        builder.add(row)
    return builder.build()


class EvidenceBuilder:
    """evidence() over rows seen one at a time. What only the whole table decides (is every
    timed call priced; which check columns merely copy the call's latency, cost or length) is
    decided at build(): until then each check column's values are kept apart, by column."""

    def __init__(self, label: str, classification: bool = False) -> None:
        self.label, self.classification = label, classification
        self._found = Evidence(label)
        self._columns: dict[str, Evidence] = {}  # check column -> its values, as metric "v"
        self._copies: dict[str, _ColumnCopies] = {}  # check column -> what it may copy
        self._passed: list[tuple[str, float, frozenset[str]]] = []  # classification only
        self._costs = Evidence(label)
        self._priced = True
        self._timed = False

    def add(self, row: dict[str, Any]) -> None:
        if row["repeat"] < 0 or row["error"]:
            return
        case = str(row["case"])
        checks = {k: v for k, v in row.items() if k not in _CALL_COLUMNS and v is not None}
        for name, value in checks.items():
            self._copies.setdefault(name, _ColumnCopies()).see(row, value)
            self._columns.setdefault(name, Evidence(name)).add("v", case, value)
        if row.get("passed") is not None:
            if self.classification:  # whether it counts depends on which columns are checks
                self._passed.append((case, float(row["passed"]), frozenset(checks)))
            else:
                self._found.add("pass_rate", case, float(row["passed"]))
        if row["cached"]:
            return
        self._timed = True
        self._priced = self._priced and row.get("cost_kind", "priced") in PRICES
        if row["latency_s"] is not None:
            self._found.add(LATENCY, case, float(row["latency_s"]))
        if row["cost_usd"] is not None:
            self._costs.add(COST, case, float(row["cost_usd"]))

    def build(self) -> Evidence:
        found = self._found
        measures = {name for name, seen in self._copies.items() if seen.measurement}
        for case, passed, names in self._passed:
            if names - measures - {LABEL_COLUMN}:  # a check beside the label's
                found.add("pass_rate", case, passed)
        for name, column in self._columns.items():
            if name in measures:
                continue
            accuracy = self.classification and name == LABEL_COLUMN
            metric = "accuracy" if accuracy else name
            if not accuracy and not name.startswith("score."):
                metric = f"score.{name}"
            for case, values in column.values.get("v", {}).items():
                for value in values:
                    if accuracy or isinstance(value, (bool, int, float)):
                        found.add(metric, case, float(value))
        if self._timed and self._priced and COST in self._costs.values:
            found.values[COST] = self._costs.values[COST]
        return found


@dataclass
class _ColumnCopies:
    """Whether a check column holds the call's own latency, cost or length on every row where
    it has a value (the `latency`, `cost` and `length` checks copy them): a measurement, not a
    score. Latency and cost are compared as themselves; a length is neither better long nor
    short."""

    numbers_only: bool = True  # no value is a bool
    copies: list[bool] = field(default_factory=lambda: [True, True, True])

    def see(self, row: dict[str, Any], value: Any) -> None:
        self.numbers_only = self.numbers_only and not isinstance(value, bool)
        sources = (
            lambda: row.get("latency_s"),
            lambda: row.get("cost_usd"),
            lambda: float(len(row.get("response") or "")),
        )
        self.copies = [
            kept and value == source() for kept, source in zip(self.copies, sources, strict=True)
        ]

    @property
    def measurement(self) -> bool:
        return self.numbers_only and any(self.copies)


@dataclass(frozen=True)
class Pair:
    """One metric compared between two variants; `diff` is a minus b, in the metric's unit."""

    metric: str
    a: str
    b: str
    n_pairs: int  # prompts both answered (0 when compared unpaired)
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float
    p_adjusted: float
    method: str
    verdict: str  # a_better | b_better | not_distinguishable
    mid_p: float | None = None  # McNemar: the mid-p value, less conservative than the exact one
    a_higher: int = 0  # prompts on which a's value is above b's (for latency: a slower)
    b_higher: int = 0
    ratio: float | None = None  # latency: median per-prompt ratio a / b
    n_compared: int = 0  # prompts in the test: n_pairs, or both variants' prompts unpaired
    comparisons: int = 1  # pairs of this metric in the family that Holm adjusted over
    detectable: float | None = None  # not distinguishable: the smallest difference this run
    # detects with 80% power, in the metric's unit (latency and cost: relative, 0.1 = 10%)
    prompts_needed: int | None = None  # ... and the prompts the observed difference would need
    repeats_vary: float | None = None  # share of prompts whose repeats disagreed (None: none)

    @property
    def paired(self) -> bool:
        return self.n_pairs > 0

    def winner(self) -> str | None:
        return {"a_better": self.a, "b_better": self.b}.get(self.verdict)

    def flipped(self) -> Pair:
        """The same comparison seen from b."""
        verdict = {"a_better": "b_better", "b_better": "a_better"}.get(self.verdict, self.verdict)
        return replace(
            self,
            a=self.b,
            b=self.a,
            diff=_neg(self.diff),
            ci_low=_neg(self.ci_high),
            ci_high=_neg(self.ci_low),
            verdict=verdict,
            a_higher=self.b_higher,
            b_higher=self.a_higher,
            ratio=1 / self.ratio if self.ratio else self.ratio,
        )


def _neg(value: float | None) -> float | None:
    return None if value is None else -value


def pairwise(variants: Sequence[Evidence], alpha: float = ALPHA) -> list[Pair]:
    """Every metric, every two variants that both have it; Holm within each metric."""
    out: list[Pair] = []
    for metric in sorted({m for v in variants for m in v.values}):
        having = [v for v in variants if v.values.get(metric)]
        out += _family(metric, list(itertools.combinations(having, 2)), alpha)
    return out


def compare_runs(current: Sequence[Evidence], baseline: Sequence[Evidence]) -> list[Pair]:
    """Each variant of a run against the same variant (by label) of a baseline run, on their
    common prompts; Holm within each metric over the variants."""
    before = {v.label: v for v in baseline}
    matched = [(v, before[v.label]) for v in current if v.label in before]
    out: list[Pair] = []
    for metric in sorted({m for v, _ in matched for m in v.values}):
        having = [(a, b) for a, b in matched if a.values.get(metric) and b.values.get(metric)]
        out += _family(metric, having, ALPHA, baseline=True)
    return out


def _family(
    metric: str, matched: list[tuple[Evidence, Evidence]], alpha: float, baseline: bool = False
) -> list[Pair]:
    """One metric's comparisons, their p-values adjusted together by Holm's method."""
    tested = [(a, b, _test(metric, a, b)) for a, b in matched]
    adjusted = significance.holm([t.p_value for _, _, t in tested])
    return [
        _pair(metric, a, b, test, p_adjusted, len(tested), alpha, baseline)
        for (a, b, test), p_adjusted in zip(tested, adjusted, strict=True)
    ]


def _common(metric: str, a: Evidence, b: Evidence) -> tuple[np.ndarray, np.ndarray]:
    """Both variants' per-prompt values on the prompts both have, in one order."""
    va = a.per_prompt(metric) if a.values.get(metric) else {}
    vb = b.per_prompt(metric) if b.values.get(metric) else {}
    common = sorted(set(va) & set(vb))
    return np.array([va[c] for c in common]), np.array([vb[c] for c in common])


def _test(metric: str, a: Evidence, b: Evidence) -> significance.Test:
    va, vb = a.per_prompt(metric), b.per_prompt(metric)
    xa, xb = _common(metric, a, b)
    if len(xa) and len(xa) >= min(len(va), len(vb)) / 2:
        if metric in (LATENCY, COST):
            return significance.sign_test(xa, xb)
        if significance.is_binary(xa, xb):
            return significance.mcnemar(xa, xb)
        return significance.signed_rank(xa, xb)
    xa = np.array(list(va.values()))
    xb = np.array(list(vb.values()))
    return significance.unpaired(xa, xb, medians=metric in (LATENCY, COST))


def _pair(
    metric: str,
    a: Evidence,
    b: Evidence,
    test: significance.Test,
    p_adjusted: float,
    comparisons: int,
    alpha: float,
    baseline: bool = False,
) -> Pair:
    paired = test.paired
    verdict = NOT_DISTINGUISHABLE
    if p_adjusted < alpha and test.direction:
        a_wins = (test.direction > 0) == higher_is_better(metric)
        verdict = "a_better" if a_wins else "b_better"
    pair = Pair(
        metric=metric,
        a=a.label,
        b=b.label if not baseline else f"{b.label} (baseline)",
        n_pairs=test.n if paired else 0,
        diff=test.diff,
        ci_low=test.ci_low,
        ci_high=test.ci_high,
        p_value=test.p_value,
        p_adjusted=p_adjusted,
        method=test.method,
        verdict=verdict,
        mid_p=test.mid_p,
        a_higher=test.a_higher,
        b_higher=test.b_higher,
        ratio=test.ratio,
        n_compared=test.n,
        comparisons=comparisons,
        repeats_vary=_repeats_vary(metric, a, b),
    )
    if verdict == NOT_DISTINGUISHABLE and paired:
        pair = replace(pair, **_power(metric, test, alpha / comparisons))
    return pair


def _power(metric: str, test: significance.Test, alpha: float) -> dict[str, Any]:
    """What the run could have detected, and the prompts the observed difference needs."""
    if test.method == "mcnemar_exact":
        discordance = (test.a_higher + test.b_higher) / test.n
        return {
            "detectable": power.mcnemar_detectable(test.n, discordance, alpha),
            "prompts_needed": power.mcnemar_prompts(test.diff or 0.0, discordance, alpha),
        }
    if test.method == "sign_test":  # latency and cost: relative, on the log ratios
        if test.sd_log_ratio is None:
            return {}
        log_detectable = power.sign_detectable(test.n, test.sd_log_ratio, alpha)
        observed = math.log(test.ratio) if test.ratio else 0.0
        return {
            "detectable": None if log_detectable is None else math.expm1(log_detectable),
            "prompts_needed": power.sign_prompts(observed, test.sd_log_ratio, alpha),
        }
    if test.sd_diff is None:
        return {}
    return {
        "detectable": power.mean_detectable(test.n, test.sd_diff, alpha),
        "prompts_needed": power.mean_prompts(test.diff or 0.0, test.sd_diff, alpha),
    }


def _repeats_vary(metric: str, a: Evidence, b: Evidence) -> float | None:
    """The share of repeated prompts whose repeats gave different values; None without repeats
    (or for latency and cost, which always vary)."""
    if metric in (LATENCY, COST):
        return None
    repeated = [v for e in (a, b) for v in e.values[metric].values() if len(v) > 1]
    if not repeated:
        return None
    return sum(len(set(v)) > 1 for v in repeated) / len(repeated)


def interval(values: dict[str, list[float]]) -> tuple[float | None, float | None]:
    """The 95% interval of a variant's mean of one metric, its prompts as clusters: Wilson's at
    the effective number of prompts for 0/1 values (stats.clustered_rate_interval), else the t
    interval of the per-prompt means."""
    clusters = list(values.values())
    if all(v in (0.0, 1.0) for c in clusters for v in c):
        return clustered_rate_interval([[v == 1.0 for v in c] for c in clusters]) or (None, None)
    return significance.t_interval(np.array([statistics.fmean(c) for c in clusters]))


Z90 = 1.6448536269514722  # the two-sided 90% interval: each end a one-sided 95% bound


def one_sided_bound(metric: str, a: Evidence, b: Evidence, lower: bool) -> tuple[float | None, int]:
    """The one-sided 95% bound (lower or upper) of a - b on the prompts both answered, and how
    many they are; None for the bound when they share too few prompts. The bound is an end of
    the two-sided 90% interval of the test pairwise() would use (Newcombe's, the t interval,
    or the median's order statistics for latency)."""
    xa, xb = _common(metric, a, b)
    if not len(xa):
        return None, 0
    if metric in (LATENCY, COST):
        low, high = significance.median_interval(xa - xb, confidence=0.90)
    elif significance.is_binary(xa, xb):
        table = significance.paired_table(xa, xb)
        low, high = significance.newcombe_paired_interval(*table, z=Z90)
    else:
        low, high = significance.t_interval(xa - xb, z_level=0.95)
    return (low if lower else high), len(xa)


def oriented(pairs: Iterable[Pair], metric: str, a: str, b: str) -> Pair | None:
    """The pair of `metric` between a and b, seen from a; None when they were not compared."""
    for pair in pairs:
        if pair.metric == metric and (pair.a, pair.b) == (a, b):
            return pair
        if pair.metric == metric and (pair.a, pair.b) == (b, a):
            return pair.flipped()
    return None


def beats(pair: Pair | None, label: str) -> TypeGuard[Pair]:
    """Whether the pair's verdict is that `label` is better."""
    return pair is not None and pair.winner() == label


def to_json(pairs: Sequence[Pair]) -> str:
    return json.dumps([asdict(p) for p in pairs], indent=2) + "\n"


def to_csv(pairs: Sequence[Pair]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(Pair.__dataclass_fields__), lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(p) for p in pairs)
    return buffer.getvalue()
