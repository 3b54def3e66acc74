"""The written interpretation: sentences generated from the numbers, each with its numbers.

"Faster", "better" and "not distinguishable" come from the pairwise verdicts (pairs.py, worded
by verdicts.py): paired tests on the prompts both variants answered, corrected by Holm's method
for the many pairs of a sweep. A pair not distinguishable says what the run could detect and
how many prompts the observed difference would need.
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean, median

from ..providers import TRADITIONAL
from . import verdicts
from .comparison import batch_note
from .data import ReportData, VariantData
from .pairs import COST, LATENCY, NOT_DISTINGUISHABLE, Pair, beats, oriented
from .pairs_text import evidence_text, metric_name, power_text


def interpret(data: ReportData) -> tuple[list[str], list[str]]:
    """(findings, what to try next), as markdown sentences."""
    measured = [v for v in data.measured if v.row.latency_p50_s is not None]
    findings: list[str] = []
    findings += verdicts.speed([v.row for v in measured], data.pairs)
    findings += _empty(data.measured)
    findings += _tokens(measured)
    findings += _unreported_tokens(data.measured)
    findings += _cost(data.measured, data.pairs)
    findings += _errors(data)
    for axis in data.swept_axes:
        findings += _sweep(measured, axis, data.pairs)
    findings += _prompt_sizes(measured)
    findings += [batch_note(v.row) + "." for v in data.measured if v.row.n_batched]
    cached = sum(v.row.n_cached for v in data.measured)
    if cached:
        findings.append(
            f"{cached} call(s) were answered from the cache: they are in the token counts but not "
            "in the latency statistics (`--no-cache` sends them)."
        )
    return findings, _next_steps(measured, data)


def _empty(measured: list[VariantData]) -> list[str]:
    return [
        f"**{v.row.n_empty} of {v.row.n_answered} answers of {v.label} were empty**: the calls "
        "succeeded but the text is blank (see responses.md); its latency and token figures "
        "include them."
        for v in measured
        if v.row.n_empty
    ]


def _tokens(measured: list[VariantData]) -> list[str]:
    """Output per call, compared only between variants whose every answer has its count."""
    per_call = {
        v.label: mean(v.output_tokens)
        for v in measured
        if v.row.output_tokens is not None and v.output_tokens
    }
    if len(per_call) < 2:
        return []
    most = max(per_call, key=per_call.get)
    least = min(per_call, key=per_call.get)
    if f"{per_call[most]:.0f}" == f"{per_call[least]:.0f}":
        return [
            f"{', '.join(per_call)} produced the same output: {per_call[most]:.0f} tokens per "
            "call on average."
        ]
    return [
        f"{most} produced the most output: {per_call[most]:.0f} tokens per call on average, "
        f"against {per_call[least]:.0f} for {least} (the least)."
    ]


def _unreported_tokens(measured: list[VariantData]) -> list[str]:
    out = []
    for v in measured:
        if not v.row.n_usage_missing or v.row.provider in TRADITIONAL:  # tokens do not apply
            continue
        what = (
            "its token counts are unknown (-), so they are not compared"
            if v.row.output_tokens is None
            else "its total is unknown (-); its output counts are complete"
        )
        out.append(
            f"{v.label}: tokens not reported by the server for {v.row.n_usage_missing} of "
            f"{v.row.n_answered} calls: {what}."
        )
    return out


def _cost(measured: list[VariantData], pairs: list[Pair]) -> list[str]:
    priced = [v for v in measured if v.row.cost_kind == "priced" and v.row.cost_per_call_usd]
    out = []
    if len(priced) >= 2:
        dear = max(priced, key=lambda v: v.row.cost_per_call_usd)
        cheap = min(priced, key=lambda v: v.row.cost_per_call_usd)
        d, c = dear.row.cost_per_call_usd, cheap.row.cost_per_call_usd
        if f"{d:.6f}" == f"{c:.6f}":
            names = ", ".join(v.label for v in priced)
            out.append(
                f"{names} cost the same: ${d:.6f} per call (${d * 1000:.2f} per 1,000 calls)."
            )
        else:
            pair = oriented(pairs, COST, cheap.label, dear.label)
            verdict = (
                f" ({cheap.label} cheaper beyond chance: {evidence_text(pair)})"
                if beats(pair, cheap.label)
                else ""
            )
            out.append(
                f"{dear.label} cost the most: ${d:.6f} per call (${d * 1000:.2f} per 1,000 calls);"
                f" {cheap.label} the least: ${c:.6f} per call (${c * 1000:.2f} per 1,000)"
                f"{verdict}."
            )
    elif priced:
        v = priced[0]
        out.append(
            f"{v.label} cost ${v.row.cost_per_call_usd:.6f} per call "
            f"(${v.row.cost_per_call_usd * 1000:.2f} per 1,000 calls)."
        )
    local = [v for v in measured if v.row.cost_kind == "local"]
    by_hour = [v.label for v in local if v.row.estimated_cost_usd]
    free = [v.label for v in local if not v.row.estimated_cost_usd]
    if by_hour:
        out.append(
            f"{', '.join(by_hour)} ran on local compute, costed by the hour (cost_per_hour_usd)."
        )
    if free:
        out.append(
            f"{', '.join(free)} ran on local compute at no hourly rate, so cost $0 here; set "
            "cost_per_hour_usd to count the machine."
        )
    unpriced = [v.label for v in measured if v.row.cost_kind == "unpriced"]
    if unpriced:
        out.append(
            f"{', '.join(unpriced)}: no known price, so no cost is claimed (unpriced, not $0)."
        )
    return out


def _errors(data: ReportData) -> list[str]:
    out = [
        f"{v.label}: {v.row.n_errors} of {v.row.n_calls} calls failed "
        f"({v.row.n_errors / v.row.n_calls:.0%})."
        for v in data.measured
        if v.row.n_errors
    ]
    out += [f"{v.label} was skipped: {v.row.skipped}" for v in data.variants if v.row.skipped]
    if not out and data.measured:
        out.append("No call failed.")
    return out


def sweep_groups(
    measured: list[VariantData], axis: str
) -> dict[tuple, list[tuple[float, VariantData]]]:
    """Variants that differ only in `axis`, keyed by model and the other swept values."""
    groups: dict[tuple, list[tuple[float, VariantData]]] = defaultdict(list)
    for v in measured:
        swept = v.row.swept or {}
        if axis not in swept:
            continue
        others = tuple(sorted((k, val) for k, val in swept.items() if k != axis))
        groups[(v.row.provider, v.row.model, others)].append((float(swept[axis]), v))
    return {k: sorted(g, key=lambda p: p[0]) for k, g in groups.items() if len(g) > 1}


def _sweep(measured: list[VariantData], axis: str, pairs: list[Pair]) -> list[str]:
    out = []
    for (_, model, others), points in sweep_groups(measured, axis).items():
        medians = [v.row.latency_p50_s for _, v in points]
        where = f" ({', '.join(f'{k}={val}' for k, val in others)})" if others else ""
        series = ", ".join(f"{x:g}: {m:.3f} s" for (x, _), m in zip(points, medians, strict=True))
        steps = [b - a for a, b in zip(medians, medians[1:], strict=False)]
        moves = verdicts.sweep_trend(points[0][1].label, points[-1][1].label, pairs)
        if not moves:
            trend = "does not change beyond the noise"
        elif all(s * moves > 0 for s in steps):  # every step the way the ends' test says
            trend = "rises" if moves > 0 else "falls"
        else:
            trend = f"{'rises' if moves > 0 else 'falls'} from end to end, but not steadily,"
        out.append(f"Median latency of {model}{where} {trend} with {axis} ({series}).")
    return out


def _prompt_sizes(measured: list[VariantData]) -> list[str]:
    out = []
    for v in measured:
        sizes = sorted(v.latency_by_prompt_size)
        if len(sizes) < 2:
            continue
        medians = [median(v.latency_by_prompt_size[s]) for s in sizes]
        series = ", ".join(f"~{s} tokens: {m:.3f} s" for s, m in zip(sizes, medians, strict=True))
        out.append(f"{v.label}: median latency by prompt size: {series}.")
    return out


def _next_steps(measured: list[VariantData], data: ReportData) -> list[str]:
    steps = _more_prompts(data.pairs)
    if (best := _fastest_and_cheapest(measured, data.pairs)) is not None:
        steps.append(
            f"{best} is both faster and cheaper per call than every other variant here, by "
            "paired tests on the prompts they answered."
        )
    for v in data.measured:
        if v.row.n_empty:
            steps.append(
                f"Read {v.label}'s empty answers in responses.md: a model that ends its turn at "
                "once may need another prompt_template, temperature or a larger model."
            )
        if v.row.n_errors:
            steps.append(
                f"Look at {v.label}'s failed calls (calls.json) before trusting its numbers; "
                "lower concurrency or raise max_retries if they are rate limits."
            )
    if "max_tokens" in data.swept_axes:
        steps.append("Keep max_tokens as low as the answers allow: it bounds latency and cost.")
    elif "temperature" not in data.swept_axes and measured and not _deterministic(data):
        steps.append("Sweep temperature (e.g. 0.4, 0.6, 0.8) and max_tokens to see their effect.")
    return steps


def _fastest_and_cheapest(measured: list[VariantData], pairs: list[Pair]) -> str | None:
    """The variant that the latency and the cost tests both put ahead of every other one."""
    labels = [v.label for v in measured]
    for label in labels:
        wins = [
            beats(p, label)
            for other in labels
            if other != label
            for p in (oriented(pairs, LATENCY, label, other), oriented(pairs, COST, label, other))
        ]
        if wins and all(wins):
            return label
    return None


def _more_prompts(pairs: list[Pair]) -> list[str]:
    """For the closest pair of each headline metric (pass rate or accuracy, latency, cost; a
    check's own score is in the Pairwise section) that the run could not tell apart: what it
    would take (prompts, or repeats where answers vary within a prompt)."""
    steps = []
    for metric in dict.fromkeys(p.metric for p in pairs if not p.metric.startswith("score.")):
        undecided = [
            p for p in pairs if p.metric == metric and p.verdict == NOT_DISTINGUISHABLE and p.paired
        ]
        needing = [p for p in undecided if p.prompts_needed is not None]
        if not needing:
            continue
        pair = min(needing, key=lambda p: p.prompts_needed)
        steps.append(
            f"To tell {pair.a} and {pair.b} apart on {metric_name(metric)}: {power_text(pair)}."
        )
    return steps


def _deterministic(data: ReportData) -> bool:
    """Every variant at temperature 0, or a traditional model: nothing for a sweep to move."""
    return all(
        v.row.provider in TRADITIONAL or v.row.temperature in (0, 0.0) for v in data.measured
    )
