"""The report's data: the comparison's rows with each variant's call rows (calls.json's) and
classification table, given (stored_report.py reads them from a run), or built in memory from
CallRecords (report_data_from_records). Nothing here reads a run."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..rows import Comparison, ComparisonRow, build_row
from ..stats import summarize
from ..tracking.calls_table import calls_table
from ..types import CallRecord
from .pairs import Evidence, EvidenceBuilder, Pair, evidence, pairwise

_SIZED_CASE = re.compile(r"@(\d+)t$")


@dataclass
class VariantData:
    row: ComparisonRow
    latencies: list[float] = field(default_factory=list)  # succeeded, not cached, not warmup
    output_tokens: list[int] = field(default_factory=list)
    latency_by_prompt_size: dict[int, list[float]] = field(default_factory=dict)
    classification: dict[str, Any] | None = None  # task classify: per-label table, confusion
    evidence: Evidence | None = None  # per-prompt values, for the pairwise verdicts

    @property
    def label(self) -> str:
        return self.row.label


@dataclass
class ReportData:
    comparison: Comparison
    variants: list[VariantData]
    tracking_uri: str

    @property
    def measured(self) -> list[VariantData]:
        return [v for v in self.variants if not v.row.skipped and v.row.n_calls > 0]

    @cached_property
    def pairs(self) -> list[Pair]:
        """Every two measured variants compared on the prompts both answered (pairs.py)."""
        return pairwise([v.evidence for v in self.measured if v.evidence is not None])

    @property
    def swept_axes(self) -> list[str]:
        axes: list[str] = []
        for v in self.variants:
            for name in v.row.swept or {}:
                if name not in axes:
                    axes.append(name)
        return axes


def report_data(
    comparison: Comparison,
    calls: Mapping[str, Iterable[dict[str, Any]]],
    classifications: dict[str, dict[str, Any] | None],
    tracking_uri: str,
) -> ReportData:
    """The report's data from the rows of a comparison, each variant's call rows (calls.json's,
    by run id) and, task classify, its classification table (by run id)."""
    variants = []
    for row in comparison.rows:
        data = VariantData(row)
        if not row.skipped:
            _fill(data, calls.get(row.run_id, []))
            data.classification = classifications.get(row.run_id)
        variants.append(data)
    return ReportData(comparison, variants, tracking_uri)


def comparison_pairs(
    comparison: Comparison, tables: Mapping[str, Iterable[dict[str, Any]]]
) -> list[Pair]:
    """The pairwise verdicts of a comparison, from its variant runs' calls tables (by run id)."""
    return pairwise(
        [
            evidence(r.label, tables.get(r.run_id, []), classification=r.accuracy is not None)
            for r in comparison.rows
            if not r.skipped and r.n_calls > 0
        ]
    )


@dataclass(frozen=True)
class VariantRun:
    """One variant held in memory: what its MLflow run would hold (params as variant_params)."""

    run_id: str
    params: dict[str, Any]
    records: Sequence[CallRecord] = ()
    swept: dict[str, Any] | None = None
    skipped: str | None = None


def report_data_from_records(
    experiment: str,
    parent_run_id: str,
    variants: Sequence[VariantRun],
    tracking_uri: str = "(not stored)",
) -> ReportData:
    """The report's data without MLflow: the metrics come from stats.summarize and the per-call
    table from calls_table, as for a stored run."""
    built = []
    for v in variants:
        params = {k: str(val) for k, val in v.params.items()}
        metrics = summarize(v.records) if not v.skipped else {}
        row = build_row(v.run_id, params, metrics, swept=v.swept or None, skipped=v.skipped)
        data = VariantData(row)
        if not v.skipped:
            columns = calls_table(v.records)
            names = list(columns)
            _fill(
                data,
                (
                    dict(zip(names, call, strict=True))
                    for call in zip(*columns.values(), strict=True)
                ),
            )
        built.append(data)
    built.sort(key=lambda d: d.row.variant_id)
    comparison = Comparison(experiment, parent_run_id, tuple(d.row for d in built))
    return ReportData(comparison, built, tracking_uri)


def _fill(data: VariantData, rows: Iterable[dict[str, Any]]) -> None:
    """The variant's evidence and timed calls, reading its rows once (a dict per call of a
    100,000-call table, all at once, is some 200 MB)."""
    builder = EvidenceBuilder(data.label, classification=data.row.accuracy is not None)
    for row in rows:
        builder.add(row)
        if row["repeat"] < 0 or row["error"] or row["cached"] or row["latency_s"] is None:
            continue
        data.latencies.append(row["latency_s"])
        if row["output_tokens"] is not None:
            data.output_tokens.append(row["output_tokens"])
        if match := _SIZED_CASE.search(str(row["case"])):
            data.latency_by_prompt_size.setdefault(int(match[1]), []).append(row["latency_s"])
    data.evidence = builder.build()
