"""The interpretation's comparative sentences: fastest, best quality, Pareto front, the classic
model against the LLMs, a sweep's trend. Each "better", "faster" or "not distinguishable" comes
from a pairwise verdict (pairs.py) and names its test and its prompts; none comes from whether
two intervals overlap."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from .cells import interval_cell, pass_interval
from .pairs import COST, LATENCY, Pair, beats, oriented
from .pairs_text import diff_text, evidence_text, power_text

if TYPE_CHECKING:
    from ..rows import ComparisonRow


def speed(rows: Sequence[ComparisonRow], pairs: Sequence[Pair]) -> list[str]:
    """The fastest variant, against the runner-up and the slowest (rows with a latency)."""
    ranked = sorted(rows, key=_median)
    if not ranked:
        return ["No call succeeded, so there is no latency to compare."]
    fast = ranked[0]
    a = _median(fast)
    if len(ranked) == 1:
        return [
            f"Only {fast.label} was measured: median latency {a:.3f} s "
            f"({_median_interval(fast)}, n={fast.n_timed})."
        ]
    second, slow = ranked[1], ranked[-1]
    b = _median(second)
    pair = oriented(pairs, LATENCY, fast.label, second.label)
    if beats(pair, fast.label):
        out = [
            f"**{fast.label}** is the fastest: median latency {a:.3f} s against {b:.3f} s for "
            f"{second.label}, {_times(pair)} ({evidence_text(pair)}; median per-prompt "
            f"difference {diff_text(LATENCY, pair.diff)}, 95% CI {_interval(pair)})."
        ]
    elif beats(pair, second.label):
        out = [
            f"{fast.label} has the lowest median latency over all calls ({a:.3f} s against "
            f"{b:.3f} s), but **{second.label} is faster on the prompts both answered** "
            f"({evidence_text(pair)})."
        ]
    else:
        out = [
            f"{fast.label} has the lowest median latency ({a:.3f} s) but is **not "
            f"distinguishable** from {second.label} ({b:.3f} s){_because(pair)}."
        ]
    if slow is not second:
        far = oriented(pairs, LATENCY, slow.label, fast.label)
        if beats(far, fast.label):
            verdict = f"slower beyond chance: {evidence_text(far)}"
        elif beats(far, slow.label):
            verdict = f"yet faster on the prompts both answered: {evidence_text(far)}"
        else:
            verdict = "not distinguishable from it"
        out.append(
            f"The slowest is {slow.label} at {_median(slow):.3f} s median "
            f"({_median(slow) / a:.2f}x the fastest, {verdict})."
        )
    return out


def _median(row: ComparisonRow) -> float:
    if row.latency_p50_s is None:
        raise ValueError(f"{row.label} has no latency: speed() takes measured rows")
    return row.latency_p50_s


def _times(pair: Pair) -> str:
    if not pair.ratio or pair.ratio >= 1:
        return "faster"
    return f"{1 / pair.ratio:.2f}x faster (median per-prompt ratio)"


def _interval(pair: Pair) -> str:
    if pair.ci_low is None or pair.ci_high is None:
        return "not available under 6 prompts"
    return f"{diff_text(pair.metric, pair.ci_low)} to {diff_text(pair.metric, pair.ci_high)}"


def _because(pair: Pair | None) -> str:
    if pair is None:
        return ": they share no prompt to compare on"
    power = power_text(pair)
    return f" ({evidence_text(pair)}{'; ' + power if power else ''})"


def _median_interval(row: ComparisonRow) -> str:
    if row.latency_p50_ci_low_s is None or row.latency_p50_ci_high_s is None:
        return "no interval: fewer than 2 prompts timed"
    interval = interval_cell(row, "latency_p50_s", "latency_p50_ci_low_s", "latency_p50_ci_high_s")
    return f"95% CI {interval} s"


def quality(rows: Sequence[ComparisonRow], pairs: Sequence[Pair]) -> list[str]:
    """The ranking by pass rate, each claim from the paired test; the Pareto front."""
    checked = sorted(
        (r for r in rows if r.pass_rate is not None and not r.skipped),
        key=lambda r: -(r.pass_rate or 0.0),
    )
    if not checked:
        return []
    best = checked[0]
    if len(checked) == 1:
        out = [
            f"Only {best.label} was checked: pass rate {best.pass_rate:.1%} "
            f"(95% CI {pass_interval(best)}, n={best.n_scored})."
        ]
    else:
        out = [_best("pass rate", "pass_rate", best, checked[1:], pairs)]
        out.append(_pareto_sentence(checked, pareto_front(checked, pairs)))
    if errors := sum(r.n_score_errors for r in checked):
        out.append(
            f"{errors} check(s) could not be made (a judge's unreadable answer): "
            "those calls count as not passed."
        )
    return out


def _best(
    name: str, metric: str, best: ComparisonRow, others: Sequence[ComparisonRow], pairs
) -> str:
    """`best` (highest on metric) against the others, in one sentence."""
    value = getattr(best, metric)
    second = others[0]
    versus = {o.label: oriented(pairs, metric, best.label, o.label) for o in others}
    beaten = [label for label, p in versus.items() if beats(p, best.label)]
    pair = versus[second.label]
    if pair is not None and len(beaten) == len(others):
        return (
            f"**{best.label}** has the best {name}: {value:.1%} against "
            f"{getattr(second, metric):.1%} for {second.label}, "
            f"{diff_text(metric, pair.diff)} (95% CI {_interval(pair)}; {evidence_text(pair)})"
            f"{'; better than every other variant too' if len(others) > 1 else ''}."
        )
    lead = f"{best.label} has the highest {name} ({value:.1%})"
    ahead = [label for label, p in versus.items() if beats(p, label)]
    if ahead:  # higher overall, lower on the prompts both answered: the paired test decides
        return (
            f"{lead} over all its calls, but **{', '.join(ahead)}** "
            f"{'is' if len(ahead) == 1 else 'are'} better on the prompts both answered "
            f"({evidence_text(versus[ahead[0]].flipped())})."  # type: ignore[union-attr]
        )
    if beaten:
        tied = [o.label for o in others if o.label not in beaten]
        return (
            f"{lead}: better than {', '.join(beaten)} by a paired test, but **not "
            f"distinguishable** from {', '.join(tied)}{_because(versus[tied[0]])}."
        )
    return (
        f"{lead} but is **not distinguishable** from {second.label} "
        f"({getattr(second, metric):.1%}){_because(pair)}."
    )


def _pareto_sentence(rows: Sequence[ComparisonRow], front: list[ComparisonRow]) -> str:
    what = "Pareto front (pass rate up, median latency and cost down)"
    if not front:
        return (
            f"{what}: none, as the paired tests rank the variants in a cycle (each is worse "
            "than another on one of them and better on none)."
        )
    if len(front) == len(rows):
        return (
            f"{what}: every variant, as no paired test shows one worse than another on one of "
            "them and better on none."
        )
    names = ", ".join(r.label for r in front)
    return (
        f"{what}: {names}; every other variant is dominated by another variant: worse on at "
        "least one of them by a paired test, and better on none."
    )


_PARETO_AXES = ("pass_rate", LATENCY, COST)


def pareto_front(rows: Sequence[ComparisonRow], pairs: Sequence[Pair]) -> list[ComparisonRow]:
    """The variants that no other one dominates: better on at least one of pass rate, latency
    and cost by a paired test, and worse on none. An axis not compared (unpriced, unmeasured)
    counts neither way; a difference the tests cannot tell apart counts neither way."""
    return [r for r in rows if not any(_dominates(o, r, pairs) for o in rows if o is not r)]


def _dominates(a: ComparisonRow, b: ComparisonRow, pairs: Sequence[Pair]) -> bool:
    winners = [
        p.winner() for axis in _PARETO_AXES if (p := oriented(pairs, axis, a.label, b.label))
    ]
    return a.label in winners and b.label not in winners


def classic_against_llms(
    classic: ComparisonRow, llms: Sequence[ComparisonRow], pairs: Sequence[Pair]
) -> str:
    """Whether any LLM beats the classic model on accuracy, by the paired test."""
    best = max(llms, key=lambda r: r.accuracy or 0.0)
    versus = {r.label: oriented(pairs, "accuracy", r.label, classic.label) for r in llms}
    beating = [label for label, p in versus.items() if beats(p, label)]
    theirs = f"{classic.label} {classic.accuracy:.1%}"
    shown = f"{best.label} {best.accuracy:.1%}"
    pair = versus[best.label]
    ahead = versus[beating[0]] if beating else None
    if ahead is not None:
        names = ", ".join(beating)
        return (
            f"**{names}** beat{'s' if len(beating) == 1 else ''} the classic model on accuracy "
            f"beyond chance: {beating[0]} {diff_text('accuracy', ahead.diff)} against {theirs} "
            f"({evidence_text(ahead)})."
        )
    if beats(pair, classic.label):
        return (
            f"**No LLM beats the classic model**: {theirs} is more accurate than the best LLM, "
            f"{shown}, beyond chance ({evidence_text(pair.flipped())})."
        )
    return (
        f"No LLM beats the classic model beyond chance: the best LLM, {shown}, against "
        f"{theirs}{_because(pair)}."
    )


def sweep_trend(first: str, last: str, pairs: Sequence[Pair]) -> int:
    """How latency moves from one end of a sweep to the other by the paired test: +1 it
    rises (the first is faster), -1 it falls, 0 not beyond chance."""
    pair = oriented(pairs, LATENCY, first, last)
    return 1 if beats(pair, first) else -1 if beats(pair, last) else 0
