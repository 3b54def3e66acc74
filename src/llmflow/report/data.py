"""Per-call data for the report, read back from MLflow: each variant run's calls.json table."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .comparison import Comparison, ComparisonRow, load_comparison

_SIZED_CASE = re.compile(r"@(\d+)t$")


@dataclass
class VariantData:
    row: ComparisonRow
    latencies: list[float] = field(default_factory=list)  # succeeded, not cached, not warmup
    output_tokens: list[int] = field(default_factory=list)
    latency_by_prompt_size: dict[int, list[float]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.row.variant_id or self.row.model


@dataclass
class ReportData:
    comparison: Comparison
    variants: list[VariantData]
    tracking_uri: str

    @property
    def measured(self) -> list[VariantData]:
        return [v for v in self.variants if not v.row.skipped and v.row.n_calls > 0]

    @property
    def swept_axes(self) -> list[str]:
        axes: list[str] = []
        for v in self.variants:
            for name in v.row.swept or {}:
                if name not in axes:
                    axes.append(name)
        return axes


def load_report_data(client: Any, experiment: str, run_id: str | None = None) -> ReportData:
    comparison = load_comparison(client, experiment, run_id)
    variants = []
    for row in comparison.rows:
        data = VariantData(row)
        if not row.skipped:
            _fill(data, _calls_table(client, row.run_id))
        variants.append(data)
    return ReportData(comparison, variants, client.tracking_uri)


def _calls_table(client: Any, run_id: str) -> list[dict[str, Any]]:
    try:
        path = client.download_artifacts(run_id, "calls.json")
    except Exception:  # a run killed before its table was written has none
        return []
    table = json.loads(Path(path).read_text())
    columns = table["columns"]
    return [dict(zip(columns, values, strict=True)) for values in table["data"]]


def _fill(data: VariantData, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row["repeat"] < 0 or row["error"] or row["cached"] or row["latency_s"] is None:
            continue
        data.latencies.append(row["latency_s"])
        if row["output_tokens"] is not None:
            data.output_tokens.append(row["output_tokens"])
        if match := _SIZED_CASE.search(str(row["case"])):
            data.latency_by_prompt_size.setdefault(int(match[1]), []).append(row["latency_s"])
