"""Task classify in the comparison and the report: accuracy with its 95% interval, macro F1 and
unparsed answers as columns; per variant, the per-label table and a confusion-matrix plot (from
the variant run's classification.json); and the plain answer to "does any LLM beat the classic
model on accuracy beyond chance, and at what latency and cost per 1,000 predictions?"."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..providers import TRADITIONAL
from ..rows import ComparisonRow
from .cells import format_cost

if TYPE_CHECKING:
    from .data import ReportData
    from .pairs import Pair

LABEL_COLUMNS = ["Label", "Precision", "Recall", "F1", "Support"]


def label_tables(data: ReportData) -> list[tuple[str, list[list[str]]]]:
    """(variant, rows of LABEL_COLUMNS) for each variant with a classification table."""
    out = []
    for v in data.measured:
        if v.classification is None:
            continue
        rows = [
            [
                str(r["label"]),
                _ratio(r["precision"]),
                _ratio(r["recall"]),
                f"{r['f1']:.3f}",
                str(r["support"]),
            ]
            for r in v.classification["per_label"]
        ]
        out.append((v.label, rows))
    return out


def plot_confusions(data: ReportData, out_dir: Path) -> dict[str, Path]:
    """One confusion-matrix PNG per classified variant: true labels down, predicted across."""
    found = [v for v in data.measured if v.classification is not None]
    if not found:
        return {}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = {}
    for index, v in enumerate(found):
        table = v.classification
        matrix, columns, labels = table["confusion"], table["columns"], table["labels"]
        fig, ax = plt.subplots(figsize=(8, 4.5))
        ax.imshow(matrix, cmap="Blues")
        ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
        ax.set_yticks(range(len(labels)), labels)
        peak = max((n for row in matrix for n in row), default=0)
        for i, row in enumerate(matrix):
            for j, n in enumerate(row):
                colour = "white" if peak and n > peak / 2 else "black"
                ax.text(j, i, str(n), ha="center", va="center", color=colour, fontsize=9)
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        ax.set_title(f"Confusion matrix: {v.label}")
        path = out_dir / f"confusion_{index}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        plots[f"Confusion matrix: {v.label}"] = path
    return plots


def classification_findings(rows: Sequence[ComparisonRow], pairs: Sequence[Pair]) -> list[str]:
    """Whether an LLM beats the classic model on accuracy beyond chance (the paired test on the
    test cases both answered), and each variant's latency and cost per 1,000 predictions."""
    from .verdicts import classic_against_llms

    scored = [r for r in rows if r.accuracy is not None and not r.skipped]
    classic = [r for r in scored if r.provider in TRADITIONAL]
    llms = [r for r in scored if r.provider not in TRADITIONAL]
    out = []
    if classic and llms:
        out.append(classic_against_llms(max(classic, key=_accuracy), llms, pairs))
    if scored:
        costs = "; ".join(_per_thousand(r) for r in sorted(scored, key=lambda r: -_accuracy(r)))
        out.append(f"Per 1,000 predictions: {costs}.")
    return out


def _accuracy(row: ComparisonRow) -> float:
    return row.accuracy or 0.0


def _per_thousand(row: ComparisonRow) -> str:
    p50 = row.latency_p50_s
    latency = "-" if p50 is None else f"{p50 * 1000:.1f} ms each ({p50 * 1000:.1f} s one at a time)"
    per_call = row.cost_per_call_usd
    cost = format_cost(None if per_call is None else per_call * 1000, row.cost_kind)
    return f"{row.label}: median {latency}, {cost}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
