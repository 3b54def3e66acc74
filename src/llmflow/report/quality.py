"""Quality in the comparison and the report: the pass-rate columns, the per-check score table
and the plot of pass rate against median latency. Who is better is verdicts.py's."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..metrics import SCORE
from ..rows import ComparisonRow
from .cells import QUALITY_COLUMNS, quality_cells


def score_table(
    rows: Sequence[ComparisonRow],
    intervals: dict[str, dict[str, tuple[float | None, float | None]]] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Model, pass rate, interval, scored, score errors, judge cost, then each check's mean,
    with its 95% interval (prompts as clusters) where `intervals` (variant -> check) has it."""
    names = sorted({name for r in rows for name in (r.scores or {})})
    header = ["Model", *QUALITY_COLUMNS, "Score errors", "Judge cost (USD)", *names]
    body = []
    for r in rows:
        if r.skipped:
            continue
        known = (intervals or {}).get(r.label, {})
        means = [_with_interval((r.scores or {}).get(name), known.get(name)) for name in names]
        judge = "-" if r.judge_cost_usd is None else f"${r.judge_cost_usd:.6f}"  # every digit
        body.append([r.label, *quality_cells(r), str(r.n_score_errors), judge, *means])
    return header, body


def _with_interval(value: float | None, found: tuple[float | None, float | None] | None) -> str:
    """A check's mean, as metrics.py formats a score, with its interval where known."""
    if value is None or found is None or None in found:
        return SCORE.format(value)
    return f"{SCORE.format(value)} ({SCORE.format_interval(*found)})"


def plot_pass_rate_vs_latency(rows: Sequence[ComparisonRow], out_dir: Path) -> Path | None:
    """Pass rate (with its interval) against median latency, one point per variant."""
    points = [r for r in rows if r.pass_rate is not None and r.latency_p50_s is not None]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = quality_figure(points)
    path = out_dir / "quality_vs_latency.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


MARKERS = "osD^vPX<>*"


def quality_figure(points: Sequence[ComparisonRow]):
    """The figure (800 x 450 px) of plot_pass_rate_vs_latency. The variants are named in a
    legend beside the axes, not beside their points, where names of close points overlap
    and run off the axes; the latency axis starts at 0, so that 0.0975 s against 0.1000 s
    looks as alike as it is."""
    import matplotlib.pyplot as plt

    from ..user_files import clip

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for i, r in enumerate(points):
        low = r.pass_rate - (r.pass_rate_ci_low if r.pass_rate_ci_low is not None else r.pass_rate)
        high = (
            r.pass_rate_ci_high if r.pass_rate_ci_high is not None else r.pass_rate
        ) - r.pass_rate
        # at 100% (0%) the Wilson bound is 1 (0) give or take a rounding error: never negative
        low, high = max(low, 0.0), max(high, 0.0)
        ax.errorbar(
            r.latency_p50_s,
            r.pass_rate,
            yerr=[[low], [high]],
            fmt=MARKERS[i % len(MARKERS)],
            capsize=4,
            label=clip(r.label, 40),
        )
    ax.set_xlim(0, max(r.latency_p50_s for r in points) * 1.15 or 1.0)
    ax.set_xlabel("median latency (s)")
    ax.set_ylabel("pass rate (95% Wilson interval)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("Quality against latency")
    ax.grid(alpha=0.3)
    columns = -(-len(points) // 18)  # 18 names a column fit the height
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8, ncols=columns)
    fig.tight_layout()
    return fig
