"""The comparison's rows (rows.py) rendered as table cells, markdown, csv or json."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from typing import Any

from ..providers import TRADITIONAL
from ..rows import Comparison, ComparisonRow
from ..tracking.schema import COMPARISON_CSV, COMPARISON_JSON, COMPARISON_MD
from .cells import (
    CLASSIFY_COLUMNS,
    QUALITY_COLUMNS,
    cell,
    classification_cells,
    format_cost,
    has_classification,
    has_quality,
    quality_cells,
)

SEED_COLUMNS = (
    "Model",
    "Provider",
    "Temperature",
    "Latency (s)",
    "Total tokens",
    "Estimated cost",
    "Task type",
)
EXTRA_COLUMNS = ("p50 (s)", "p95 (s)", "TTFT p50 (s)", "Calls", "Errors")
TEXT_COLUMNS = ("Model", "Provider", "Task type", "Estimated cost")  # the others are numbers
# what a narrow terminal still shows: the variant, its speed, cost, errors and quality
ESSENTIAL_COLUMNS = (
    "Model",
    "p50 (s)",
    "p95 (s)",
    "Estimated cost",
    "Errors",
    "Pass rate",
    "Accuracy",
)
EXTRA_METRICS = ("latency_p50_s", "latency_p95_s", "ttft_p50_s", "n_calls", "n_errors")


def table_rows(comparison: Comparison) -> list[list[str]]:
    """Display strings for SEED_COLUMNS + EXTRA_COLUMNS, one list per variant."""
    out = []
    for r in comparison.rows:
        model = r.variant_id if r.variant_id and r.variant_id != r.model else r.model
        if r.skipped:
            out.append(
                [
                    model,
                    r.provider,
                    _fmt_temp(r.temperature),
                    "skipped",
                    "-",
                    "-",
                    r.task_type,
                    "-",
                    "-",
                    "-",
                    "0",
                    "-",
                ]
            )
            continue
        out.append(
            [
                model,
                r.provider,
                _fmt_temp(r.temperature),
                cell(r, "latency_s"),
                cell(r, "total_tokens"),
                format_cost(r.estimated_cost_usd, r.cost_kind),
                r.task_type,
                *(cell(r, key) for key in EXTRA_METRICS),
            ]
        )
    return out


def _fmt_temp(value: float | str | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def warnings(comparison: Comparison) -> list[str]:
    """What a cell cannot say: blank answers, and token counts the server did not send."""
    out = []
    for r in comparison.rows:
        if r.skipped:
            continue
        if r.n_empty:
            out.append(f"{r.n_empty} of {r.n_answered} answers of {r.label} were empty")
        if r.n_batched:
            out.append(batch_note(r))
        if r.n_usage_missing and r.provider not in TRADITIONAL:
            out.append(
                f"tokens not reported by the server for {r.n_usage_missing} of {r.n_answered} "
                f"calls of {r.label}: its token sums are unknown (-), not 0"
            )
    return out


def batch_note(r: ComparisonRow) -> str:
    """A batched variant's latency is unknown: said wherever its latency would be compared."""
    wall = f" (longest job {r.batch_wall_s:.0f} s)" if r.batch_wall_s is not None else ""
    return (
        f"latency was not measured for {r.label}: {r.n_batched} call(s) went through the "
        f"provider's batch API{wall}; it is left out of every latency comparison"
    )


def table_cells(comparison: Comparison) -> tuple[tuple[str, ...], list[list[str]]]:
    """The header and the rows of the comparison's table, as markdown and the terminal show it."""
    header = SEED_COLUMNS + EXTRA_COLUMNS + _quality_header(comparison)
    return header, _rows_with_quality(comparison)


def to_markdown(comparison: Comparison) -> str:
    header, rows = table_cells(comparison)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    notes = [f"- **Warning**: {w}" for w in warnings(comparison)]
    notes += [f"- {r.variant_id} skipped: {r.skipped}" for r in comparison.rows if r.skipped]
    lines += [""] + notes if notes else []
    return "\n".join(lines) + "\n"


def _quality_header(comparison: Comparison) -> tuple[str, ...]:
    if has_classification(comparison.rows):  # accuracy, not the pass rate of all checks
        return CLASSIFY_COLUMNS
    return QUALITY_COLUMNS if has_quality(comparison.rows) else ()


def _rows_with_quality(comparison: Comparison) -> list[list[str]]:
    """table_rows, and the quality (task classify: accuracy) cells when any variant was
    checked."""
    rows = table_rows(comparison)
    if has_classification(comparison.rows):
        cells = classification_cells
    elif has_quality(comparison.rows):
        cells = quality_cells
    else:
        return rows
    return [row + cells(r) for row, r in zip(rows, comparison.rows, strict=True)]


def to_json(comparison: Comparison) -> str:
    return json.dumps([asdict(r) for r in comparison.rows], indent=2) + "\n"


def to_csv(comparison: Comparison) -> str:
    buffer = io.StringIO()
    fields = list(ComparisonRow.__dataclass_fields__)
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in comparison.rows:
        writer.writerow({k: _csv_cell(v) for k, v in asdict(row).items()})
    return buffer.getvalue()


def _csv_cell(value: Any) -> Any:
    """A dict cell (the swept settings, each check's mean) as JSON, which any reader parses;
    csv would write Python's repr."""
    return json.dumps(value) if isinstance(value, dict) else value


def comparison_artifacts(comparison: Comparison) -> dict[str, str]:
    """What the parent run stores of its own comparison."""
    return {
        COMPARISON_MD: to_markdown(comparison),
        COMPARISON_JSON: to_json(comparison),
        COMPARISON_CSV: to_csv(comparison),
    }
