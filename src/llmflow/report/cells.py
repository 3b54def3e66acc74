"""A comparison row's values as the report's and the terminal's cells: written here once, each
number as metrics.py's Metric.format writes it."""

from __future__ import annotations

from collections.abc import Sequence

from ..metrics import BY_KEY
from ..rows import LOCAL, ComparisonRow

QUALITY_COLUMNS = ("Pass rate", "Pass 95% CI", "Scored")
CLASSIFY_COLUMNS = ("Accuracy", "Accuracy 95% CI", "Macro F1", "Unparsed")


def cell(row: ComparisonRow, key: str) -> str:
    """The row's value of a declared metric, as its Metric formats it."""
    return BY_KEY[key].format(getattr(row, key))


def interval_cell(row: ComparisonRow, key: str, low: str, high: str) -> str:
    """The interval of metric `key` whose ends are the row's fields `low` and `high`."""
    return BY_KEY[key].format_interval(getattr(row, low), getattr(row, high))


def format_cost(usd: float | None, kind: str) -> str:
    if usd is None:
        return "unpriced"
    text = BY_KEY["estimated_cost_usd"].format(usd)
    return f"{text} (local)" if kind == LOCAL else text


def has_quality(rows: Sequence[ComparisonRow]) -> bool:
    return any(r.pass_rate is not None for r in rows)


def quality_cells(row: ComparisonRow) -> list[str]:
    if row.pass_rate is None:
        return ["-", "-", str(row.n_scored)]
    return [cell(row, "pass_rate"), pass_interval(row), str(row.n_scored)]


def pass_interval(row: ComparisonRow) -> str:
    return interval_cell(row, "pass_rate", "pass_rate_ci_low", "pass_rate_ci_high")


def has_classification(rows: Sequence[ComparisonRow]) -> bool:
    return any(r.accuracy is not None for r in rows)


def classification_cells(row: ComparisonRow) -> list[str]:
    if row.accuracy is None:
        return ["-"] * len(CLASSIFY_COLUMNS)
    unparsed = "-" if row.n_unparsed is None else str(row.n_unparsed)
    return [cell(row, "accuracy"), accuracy_interval(row), cell(row, "macro_f1"), unparsed]


def accuracy_interval(row: ComparisonRow) -> str:
    return interval_cell(row, "accuracy", "accuracy_ci_low", "accuracy_ci_high")
