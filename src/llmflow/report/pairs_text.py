"""Pairwise verdicts in words and tables: what a sentence says of a pair, the report's Pairwise
section (a table of pairs, or a matrix for many variants) and `compare --pairs`."""

from __future__ import annotations

from collections.abc import Sequence

from ..power import fewest_one_way
from .blocks import Block, Bullets, Heading, Paragraph, Table
from .pairs import COST, LATENCY, NOT_DISTINGUISHABLE, Pair

MATRIX_FROM = 5  # variants: from this many, each metric is a matrix rather than a list of pairs
PAIR_COLUMNS = (
    "Metric",
    "A",
    "B",
    "Prompts",
    "A - B",
    "95% CI",
    "p",
    "p (Holm)",
    "Test",
    "Verdict",
)
_TESTS = {
    "mcnemar_exact": "exact McNemar test",
    "wilcoxon_exact": "Wilcoxon signed-rank test (exact)",
    "wilcoxon_asymptotic": "Wilcoxon signed-rank test",
    "sign_test": "sign test",
    "fisher_exact": "Fisher's exact test",
    "welch_t": "Welch's t test",
    "mann_whitney": "Mann-Whitney test",
    "too_few_prompts": "no test (fewer than 2 prompts each)",
}
_NAMES = {
    "pass_rate": "pass rate",
    "accuracy": "accuracy",
    LATENCY: "latency",
    COST: "cost per call",
}


def metric_name(metric: str) -> str:
    return _NAMES.get(metric, metric.removeprefix("score.") + " score")


def diff_text(metric: str, value: float | None) -> str:
    """A difference in the metric's own unit: points for rates, seconds, dollars."""
    if value is None:
        return "-"
    if metric in ("pass_rate", "accuracy"):
        return f"{value * 100:+.1f} pts"
    if metric == LATENCY:
        return f"{value:+.3f} s"
    if metric == COST:
        return f"{'-' if value < 0 else '+'}${abs(value):.6f}"
    return f"{value:+.3f}"


def interval_text(pair: Pair) -> str:
    if pair.ci_low is None or pair.ci_high is None:
        return "-"
    return f"{diff_text(pair.metric, pair.ci_low)} to {diff_text(pair.metric, pair.ci_high)}"


def p_text(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def verdict_text(pair: Pair) -> str:
    winner = pair.winner()
    return f"{winner} better" if winner else "not distinguishable"


def evidence_text(pair: Pair) -> str:
    """The test and its prompts, as a sentence's parenthesis: which test, on how many prompts,
    how the prompts lean, the p-value and its Holm adjustment."""
    test = _TESTS.get(pair.method, pair.method)
    if not pair.paired:
        return (
            f"unpaired, as they did not answer the same prompts: {test} over "
            f"{pair.n_compared} prompts, p = {p_text(pair.p_value)}{_holm(pair)}"
        )
    lean = _lean(pair)
    mid = f", mid-p {p_text(pair.mid_p)}" if pair.mid_p is not None else ""
    return (
        f"{test} on the {pair.n_pairs} prompts both answered{lean}: p = {p_text(pair.p_value)}"
        f"{mid}{_holm(pair)}"
    )


def _lean(pair: Pair) -> str:
    if pair.metric == LATENCY:
        return f", {pair.a} slower on {pair.a_higher} and faster on {pair.b_higher}"
    if pair.method == "mcnemar_exact":
        return f", {pair.a_higher} passed by {pair.a} only and {pair.b_higher} by {pair.b} only"
    return f", {pair.a} higher on {pair.a_higher} and lower on {pair.b_higher}"


def _holm(pair: Pair) -> str:
    if pair.comparisons < 2:
        return ""
    return f", {p_text(pair.p_adjusted)} after Holm's correction for {pair.comparisons} pairs"


def power_text(pair: Pair) -> str:
    """For a pair not distinguishable: what the run could have detected, how many prompts the
    observed difference would need, and whether repeats could help."""
    if pair.verdict != NOT_DISTINGUISHABLE or not pair.paired:
        return ""
    parts = []
    if pair.detectable is not None:
        relative = pair.metric in (LATENCY, COST)
        shown = (
            f"{pair.detectable:.0%} in {metric_name(pair.metric)}"
            if relative
            else diff_text(pair.metric, pair.detectable).lstrip("+")
        )
        parts.append(f"this run could detect a difference of about {shown} (80% power)")
    elif pair.method == "sign_test" and pair.n_pairs < fewest_one_way():
        parts.append(f"{pair.n_pairs} prompts are too few for the sign test to tell any difference")
    elif pair.method == "mcnemar_exact" and not pair.a_higher + pair.b_higher:
        parts.append(f"they agreed on every one of the {pair.n_pairs} prompts")
    elif pair.method == "mcnemar_exact":
        disagreed = pair.a_higher + pair.b_higher
        parts.append(
            f"with {disagreed} of {pair.n_pairs} prompts telling them apart, no difference "
            "would be detected at 80% power"
        )
    if pair.prompts_needed is not None and pair.diff:
        observed = (
            f"{abs(pair.ratio - 1):.0%}" if pair.metric in (LATENCY, COST) and pair.ratio else None
        ) or diff_text(pair.metric, abs(pair.diff)).lstrip("+")
        parts.append(f"the {observed} observed would need about {pair.prompts_needed:,} prompts")
    if pair.repeats_vary is not None:
        parts.append(
            "more repeats would not help: every prompt's repeats gave the same result"
            if pair.repeats_vary == 0
            else f"repeats disagreed on {pair.repeats_vary:.0%} of the repeated prompts"
        )
    return "; ".join(parts)


def pair_rows(pairs: Sequence[Pair]) -> list[list[str]]:
    return [
        [
            metric_name(p.metric),
            p.a,
            p.b,
            str(p.n_pairs) if p.paired else f"{p.n_compared} unpaired",
            diff_text(p.metric, p.diff),
            interval_text(p),
            p_text(p.p_value),
            p_text(p.p_adjusted),
            p.method,
            verdict_text(p),
        ]
        for p in pairs
    ]


def to_markdown(pairs: Sequence[Pair]) -> str:
    if not pairs:
        return "No two variants share a metric to compare.\n"
    rows = pair_rows(pairs)
    lines = ["| " + " | ".join(PAIR_COLUMNS) + " |", "|" + "---|" * len(PAIR_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def matrix(pairs: Sequence[Pair], metric: str, labels: Sequence[str]) -> Table:
    """One metric as a matrix: the cell of row x and column y says how x fares against y."""
    from .pairs import oriented

    rows = []
    for x in labels:
        cells = [x]
        for y in labels:
            pair = oriented(pairs, metric, x, y) if x != y else None
            cells.append(_cell(pair, x))
        rows.append(cells)
    return Table([f"{metric_name(metric)}: row vs column", *labels], rows)


def _cell(pair: Pair | None, row: str) -> str:
    if pair is None:
        return ""
    winner = pair.winner()
    mark = "better" if winner == row else "worse" if winner else "~"
    return f"{mark} ({diff_text(pair.metric, pair.diff)})"


def section(pairs: Sequence[Pair], labels: Sequence[str]) -> list[Block]:
    """The report's Pairwise section."""
    if not pairs:
        return []
    blocks: list[Block] = [
        Heading("Pairwise comparisons"),
        Paragraph(
            "Every two variants compared on the prompts both answered (a prompt's repeats are "
            "one observation). A difference is A minus B; a verdict says better only when the "
            "p-value, adjusted by Holm's method over all the pairs of that metric, is under "
            "0.05. The same list is in pairs.json."
        ),
    ]
    if len(labels) < MATRIX_FROM:
        blocks.append(Table(PAIR_COLUMNS, pair_rows(pairs)))
        return blocks
    for metric in dict.fromkeys(p.metric for p in pairs):
        blocks.append(matrix(pairs, metric, labels))
    significant = [
        f"{p.winner()} better than {p.b if p.winner() == p.a else p.a} on "
        f"{metric_name(p.metric)} ({diff_text(p.metric, p.diff)}, A = {p.a}): {evidence_text(p)}"
        for p in pairs
        if p.winner()
    ]
    blocks.append(Bullets(significant or ["No pair differs beyond chance on any metric."]))
    return blocks
