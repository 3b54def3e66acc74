"""A run against a baseline run: per variant, the change of latency and quality, marked * when
the paired test on the prompts both runs answered says it is beyond chance (Holm over the
variants)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..rows import ComparisonRow
from .cells import cell, format_cost
from .data import ReportData
from .pairs import LATENCY, Pair, compare_runs
from .pairs_text import diff_text, evidence_text, metric_name

QUALITY_METRICS = ("pass_rate", "accuracy")


@dataclass(frozen=True)
class Delta:
    variant_id: str
    before: ComparisonRow
    after: ComparisonRow
    pairs: dict[str, Pair] = field(default_factory=dict)  # metric -> this run vs the baseline

    def significant(self, metric: str) -> bool:
        pair = self.pairs.get(metric)
        return pair is not None and pair.winner() is not None


def deltas(baseline: ReportData, current: ReportData) -> list[Delta]:
    """Each variant of `current` that `baseline` has too, with its paired tests."""
    before = {v.label: v for v in baseline.measured}
    after = [v for v in current.measured if v.label in before]
    pairs = compare_runs(
        [v.evidence for v in after if v.evidence is not None],
        [v.evidence for v in before.values() if v.evidence is not None],
    )
    out = []
    for v in after:
        found = {p.metric: p for p in pairs if p.a == v.label}
        out.append(Delta(v.label, before[v.label].row, v.row, found))
    return out


def to_markdown(found: list[Delta], baseline_id: str, current_id: str) -> str:
    quality = [m for m in QUALITY_METRICS if any(getattr(d.after, m) is not None for d in found)]
    header = ["Model", "p50 latency (s)", "change"]
    for metric in quality:
        header += [metric_name(metric).capitalize(), "change"]
    header += ["Total tokens", "Estimated cost"]
    lines = [
        f"Baseline `{baseline_id}` -> current `{current_id}`; * = a change beyond chance (a "
        "paired test on the prompts both runs answered, Holm-corrected over the variants)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for d in found:
        a, b = d.before.latency_p50_s, d.after.latency_p50_s
        change = f"{(b - a) / a:+.1%}{_star(d, LATENCY)}" if a and b else "-"
        cells = [d.variant_id, _pair(d, "latency_p50_s"), change]
        for metric in quality:
            old, new = getattr(d.before, metric), getattr(d.after, metric)
            moved = "-" if old is None or new is None else diff_text(metric, new - old)
            cells += [_pair(d, metric), f"{moved}{_star(d, metric)}"]
        cells += [
            _pair(d, "total_tokens"),
            f"{format_cost(d.before.estimated_cost_usd, d.before.cost_kind)} -> "
            f"{format_cost(d.after.estimated_cost_usd, d.after.cost_kind)}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- {d.variant_id}, {metric_name(metric)}: {evidence_text(pair)}"
        for d in found
        for metric, pair in d.pairs.items()
        if metric in (LATENCY, *quality)
    ]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def _star(delta: Delta, metric: str) -> str:
    """`*` where the paired test says the change is beyond chance (the notes under the table
    say which way, when the medians over all calls moved the other way)."""
    return " *" if delta.significant(metric) else ""


def _pair(delta: Delta, key: str) -> str:
    """The metric before -> after, as metrics.py formats it."""
    return f"{cell(delta.before, key)} -> {cell(delta.after, key)}"
