"""Quality in the comparison and the report: the pass-rate columns, the ranking by quality
(claimed only when the 95% intervals do not overlap, as for latency), the Pareto front of
quality, latency and cost, and the plot of pass rate against median latency."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .comparison import ComparisonRow

QUALITY_COLUMNS = ("Pass rate", "Pass 95% CI", "Scored")


def quality_fields(metrics: dict[str, float]) -> dict[str, Any]:
    """The quality fields of a ComparisonRow, from a variant run's metrics."""
    # NaN: a check no longer made (rescore: MLflow cannot delete a metric)
    scores = {
        k.removeprefix("score."): v
        for k, v in metrics.items()
        if k.startswith("score.") and not math.isnan(v)
    }
    return {
        "pass_rate": metrics.get("pass_rate"),
        "pass_rate_ci_low": metrics.get("pass_rate_ci_low"),
        "pass_rate_ci_high": metrics.get("pass_rate_ci_high"),
        "n_scored": int(metrics.get("n_scored", 0)),
        "n_score_errors": int(metrics.get("n_score_errors", 0)),
        "judge_cost_usd": metrics.get("judge_cost_usd"),
        "scores": dict(sorted(scores.items())) or None,
    }


def has_quality(rows: Sequence[ComparisonRow]) -> bool:
    return any(r.pass_rate is not None for r in rows)


def quality_cells(row: ComparisonRow) -> list[str]:
    if row.pass_rate is None:
        return ["-", "-", str(row.n_scored)]
    return [f"{row.pass_rate:.1%}", interval_text(row), str(row.n_scored)]


def interval_text(row: ComparisonRow) -> str:
    if row.pass_rate_ci_low is None or row.pass_rate_ci_high is None:
        return "-"
    return f"{row.pass_rate_ci_low:.1%}-{row.pass_rate_ci_high:.1%}"


def score_table(rows: Sequence[ComparisonRow]) -> tuple[list[str], list[list[str]]]:
    """Model, pass rate, interval, scored, score errors, judge cost, then each check's mean."""
    names = sorted({name for r in rows for name in (r.scores or {})})
    header = ["Model", *QUALITY_COLUMNS, "Score errors", "Judge cost (USD)", *names]
    body = []
    for r in rows:
        if r.skipped:
            continue
        means = [_num((r.scores or {}).get(name)) for name in names]
        judge = "-" if r.judge_cost_usd is None else f"${r.judge_cost_usd:.6f}"
        body.append([r.label, *quality_cells(r), str(r.n_score_errors), judge, *means])
    return header, body


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def quality_distinct(a: ComparisonRow, b: ComparisonRow) -> bool:
    """True when the 95% intervals of the two pass rates do not overlap."""
    if None in (a.pass_rate_ci_low, a.pass_rate_ci_high, b.pass_rate_ci_low, b.pass_rate_ci_high):
        return False
    return a.pass_rate_ci_low > b.pass_rate_ci_high or b.pass_rate_ci_low > a.pass_rate_ci_high


def quality_findings(rows: Sequence[ComparisonRow]) -> list[str]:
    """The ranking by pass rate, honest about overlap, and the Pareto front."""
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
            f"(95% CI {interval_text(best)}, n={best.n_scored})."
        ]
    elif quality_distinct(best, checked[1]):
        second = checked[1]
        out = [
            f"**{best.label}** has the best quality: pass rate {best.pass_rate:.1%} against "
            f"{second.pass_rate:.1%} for {second.label} (95% CI {interval_text(best)} vs "
            f"{interval_text(second)}: the intervals do not overlap)."
        ]
    else:
        second = checked[1]
        out = [
            f"{best.label} has the highest pass rate ({best.pass_rate:.1%}) but is **not "
            f"distinguishable** from {second.label} ({second.pass_rate:.1%}): their 95% "
            f"intervals overlap ({interval_text(best)} vs {interval_text(second)}); more "
            "prompts or repeats would narrow them."
        ]
    front = pareto_front(checked)
    if len(checked) > 1:
        names = ", ".join(r.label for r in front)
        out.append(
            f"Pareto front (pass rate up, median latency and cost down): {names}; every other "
            "variant is worse on one of them and no better on the others."
        )
    if errors := sum(r.n_score_errors for r in checked):
        out.append(
            f"{errors} check(s) could not be made (a judge's unreadable answer): "
            "those calls count as not passed."
        )
    return out


def pareto_front(rows: Sequence[ComparisonRow]) -> list[ComparisonRow]:
    """The variants no other one dominates on (pass rate, median latency, cost); an unknown
    latency or cost (unpriced) is left out of that comparison, never read as 0."""
    return [r for r in rows if not any(_dominates(o, r) for o in rows if o is not r)]


def _dominates(a: ComparisonRow, b: ComparisonRow) -> bool:
    pairs = [(a.pass_rate, b.pass_rate, True)]
    pairs.append((a.latency_p50_s, b.latency_p50_s, False))
    pairs.append((a.cost_per_call_usd, b.cost_per_call_usd, False))
    known = [(x, y, up) for x, y, up in pairs if x is not None and y is not None]
    no_worse = all((x >= y) if up else (x <= y) for x, y, up in known)
    better = any((x > y) if up else (x < y) for x, y, up in known)
    return no_worse and better


def plot_pass_rate_vs_latency(rows: Sequence[ComparisonRow], out_dir: Path) -> Path | None:
    """Pass rate (with its interval) against median latency, one point per variant."""
    points = [r for r in rows if r.pass_rate is not None and r.latency_p50_s is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in points:
        low = r.pass_rate - (r.pass_rate_ci_low if r.pass_rate_ci_low is not None else r.pass_rate)
        high = (
            r.pass_rate_ci_high if r.pass_rate_ci_high is not None else r.pass_rate
        ) - r.pass_rate
        # at 100% (0%) the Wilson bound is 1 (0) give or take a rounding error: never negative
        low, high = max(low, 0.0), max(high, 0.0)
        ax.errorbar(r.latency_p50_s, r.pass_rate, yerr=[[low], [high]], fmt="o", capsize=4)
        ax.annotate(
            r.label,
            (r.latency_p50_s, r.pass_rate),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    ax.set_xlabel("median latency (s)")
    ax.set_ylabel("pass rate (95% Wilson interval)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Quality against latency")
    path = out_dir / "quality_vs_latency.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
