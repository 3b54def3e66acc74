"""Per-call data for the report: each variant run's calls.json table, read back from MLflow, or
as a run that just wrote it still holds it (load_report_data's `known`), or built in memory from
CallRecords (report_data_from_records)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..redact import redact_url
from ..stats import summarize
from ..tracking.artifacts import read_json
from ..tracking.calls_table import calls_table
from ..tracking.runs import TAG_VARIANT
from ..types import CallRecord
from .classification import load_classification
from .comparison import Comparison, ComparisonRow, load_comparison, row_from
from .pairs import Evidence, Pair, evidence, pairwise

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


def load_report_data(
    client: Any,
    experiment: str,
    run_id: str | None = None,
    comparison: Comparison | None = None,
    known: dict[str, dict[str, list[Any]]] | None = None,
) -> ReportData:
    """The report's data of a sweep (`run_id`, else the experiment's latest), read from MLflow;
    a `comparison` already loaded, and calls tables at hand (`known`, by run id: those a run just
    wrote), are not read again."""
    if comparison is None:
        comparison = load_comparison(client, experiment, run_id)
    known = known or {}
    variants = []
    for row in comparison.rows:
        data = VariantData(row)
        if not row.skipped:
            table = known.get(row.run_id)
            _fill(data, _rows(table) if table is not None else calls_rows(client, row.run_id))
        if not row.skipped and row.accuracy is not None:
            data.classification = load_classification(client, row.run_id)
        variants.append(data)
    return ReportData(comparison, variants, redact_url(client.tracking_uri))


def comparison_pairs(comparison: Comparison, tables: dict[str, list[dict[str, Any]]]) -> list[Pair]:
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
        tags = {TAG_VARIANT: params.get("variant_id", "")}
        if v.swept:
            tags["llmflow.swept"] = json.dumps(v.swept)
        if v.skipped:
            tags["llmflow.skipped"] = v.skipped
        metrics = summarize(v.records) if not v.skipped else {}
        data = VariantData(row_from(v.run_id, params, metrics, tags))
        if not v.skipped:
            _fill(data, _rows(calls_table(v.records)))
        built.append(data)
    built.sort(key=lambda d: d.row.variant_id)
    comparison = Comparison(experiment, parent_run_id, tuple(d.row for d in built))
    return ReportData(comparison, built, tracking_uri)


def calls_rows(client: Any, run_id: str) -> list[dict[str, Any]]:
    """A variant run's calls.json, one dict per call; none for a run without it."""
    table = read_json(client, run_id, "calls.json")
    if table is None:  # a run killed before its table was written has none
        return []
    columns = table["columns"]
    return [dict(zip(columns, values, strict=True)) for values in table["data"]]


def _rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """calls_table's columns as one dict per call, as _calls_table reads them back."""
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _fill(data: VariantData, rows: list[dict[str, Any]]) -> None:
    data.evidence = evidence(data.label, rows, classification=data.row.accuracy is not None)
    for row in rows:
        if row["repeat"] < 0 or row["error"] or row["cached"] or row["latency_s"] is None:
            continue
        data.latencies.append(row["latency_s"])
        if row["output_tokens"] is not None:
            data.output_tokens.append(row["output_tokens"])
        if match := _SIZED_CASE.search(str(row["case"])):
            data.latency_by_prompt_size.setdefault(int(match[1]), []).append(row["latency_s"])
