"""The report's data of a stored run: read by tracking/read.py (the one reader of runs), shaped
by report/data.py (which reads nothing)."""

from __future__ import annotations

from typing import Any

from .redact import redact_url
from .report.data import ReportData, report_data
from .rows import Comparison
from .tracking import read


def load_report_data(
    client: Any,
    experiment: str,
    run_id: str | None = None,
    comparison: Comparison | None = None,
    known: dict[str, dict[str, list[Any]]] | None = None,
) -> ReportData:
    """The report's data of a sweep (`run_id`, else the experiment's latest), read from MLflow;
    a `comparison` already loaded, and calls tables at hand (`known`, by run id, as
    tracking/calls_table.py builds them: those a run just wrote), are not read again."""
    if comparison is None:
        comparison = read.read_comparison(client, experiment, run_id)
    known = known or {}
    calls, classifications = {}, {}
    for row in comparison.rows:
        if row.skipped:
            continue
        table = known.get(row.run_id)
        calls[row.run_id] = (
            read.CallsTable.of_columns(table).iter_rows()
            if table is not None
            else read.call_rows(client, row.run_id)
        )
        if row.accuracy is not None:
            classifications[row.run_id] = read.classification_table(client, row.run_id)
    return report_data(comparison, calls, classifications, redact_url(client.tracking_uri))
