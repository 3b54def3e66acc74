"""The end of a run: each variant's metrics, scores and tables, the judges' assessments, a
trained model, the comparison, then the parent run with the report's files (the caller renders
them from report_data(): it may be another process, which has matplotlib imported already).
Whatever the status, every call paid for is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import LoadedExperiment
from .journal import journal_path
from .plan import Plan, Variant
from .quality_outputs import classification
from .redact import one_line
from .report.publish import REPORT_FAILED
from .run_types import RunResult
from .scoring import CaseChecks, case_table
from .stats import summarize
from .tracking.schema import TAG_SKIPPED
from .tracking.sklearn_model import log_trained_model

if TYPE_CHECKING:
    from .providers import Provider
    from .report import Comparison
    from .report.data import ReportData
    from .scoring import Score
    from .scoring.judge import Judged
    from .tracking.runs import RunStore


@dataclass
class Finishing:
    store: RunStore
    loaded: LoadedExperiment
    plan: Plan
    result: RunResult
    judged: Judged | None
    providers: dict[str, Provider]  # those opened: a model trained in the run logs itself
    # the calls the trace writer scored already: by variant id, then (case_id, repeat)
    scored: dict[str, dict[tuple[str, int], tuple[Score, ...]]] = field(default_factory=dict)
    # each variant run's calls table as written, by run id: the report reads them from here
    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def finish_variants(self, run_ids: dict[str, str], status: str) -> Comparison:
        """Write every variant run, ended with `status` (a skipped variant's as FAILED); the
        comparison they make."""
        from .tracking.read import read_comparison as load_comparison

        result = self.result
        skipped = {s.variant.id: s.reason for s in result.skipped}
        for variant in self.plan.variants:
            self._finish_variant(variant, run_ids[variant.id], status, skipped.get(variant.id))
        return load_comparison(self.store.client, result.experiment_name, result.parent_run_id)

    def report_data(self, comparison: Comparison) -> ReportData | None:
        """What the report shows, when the file asks for a report: the runs' `comparison` (what
        finish_variants returned) and the calls tables they were just given; None, and a line in
        the run's problems, when it cannot be read."""
        from .stored_report import load_report_data

        if not self.loaded.config.report:
            return None
        result = self.result
        try:
            return load_report_data(
                self.store.client, result.experiment_name, comparison=comparison, known=self.tables
            )
        except Exception as e:  # noqa: BLE001 - a report that fails must not fail the run
            result.problems.append(f"{REPORT_FAILED}: {one_line(e)}")
            return None

    def finish_parent(
        self,
        comparison: Comparison,
        status: str,
        journal_dir: Path | None,
        report_dir: Path | None,
    ) -> None:
        """The parent run: the report's files (rendered by the caller into `report_dir`), the
        comparison, the journal; then it ends with `status`."""
        from .report import comparison_artifacts

        result = self.result
        if report_dir is not None:
            try:
                self.store.client.log_artifacts(result.parent_run_id, str(report_dir), "report")
            except Exception as e:  # noqa: BLE001 - a report that fails must not fail the run
                result.problems.append(f"{REPORT_FAILED}: {one_line(e)}")
        journal = journal_path(result.parent_run_id, journal_dir)
        artifacts = comparison_artifacts(comparison)
        totals = run_totals(comparison)
        self.store.finish_parent(result.parent_run_id, artifacts, status, journal, totals)

    @cached_property
    def checks(self) -> dict[str, CaseChecks] | None:
        """What each case is checked with, for every variant; None when the file checks nothing."""
        return case_table(self.loaded)

    def _finish_variant(
        self, variant: Variant, run_id: str, status: str, skipped: str | None
    ) -> None:
        from .scoring import quality_metrics, score_records
        from .scoring.judge import judge_cost_metric, with_judges

        store, judged = self.store, self.judged
        records = self.result.records.get(variant.id, [])  # a resumed, skipped one keeps its own
        if skipped is not None:
            store.client.set_tag(run_id, TAG_SKIPPED, skipped)
        checks = self.checks
        known = self.scored.get(variant.id)
        scores = score_records(records, checks, known) if checks is not None else None
        scored = with_judges(scores, judged, variant.id)
        metrics = {**summarize(records), **quality_metrics(scored or {})}
        metrics.update(judge_cost_metric(judged, variant.id))
        metrics.update(classification(store, run_id, self.loaded, records, checks))
        ended = "FAILED" if skipped else status
        self.tables[run_id] = store.finish_variant(run_id, records, metrics, ended, scored)
        self._log_assessments(run_id, variant.id, scored or {})
        self._log_trained_model(run_id, variant.id)

    def _log_assessments(self, run_id: str, variant_id: str, scored: dict[Any, Any]) -> None:
        """The judges' scores as assessments on the traces, now written, and the judge calls as
        traces of their own; after a resume, every score (a trace written before a kill or an
        outage may lack its own). Each name once on a trace, however often this is done. A
        failure is reported, never fatal: the calls and their metrics are safe already."""
        from .tracking.assessments import log_call_scores

        judged, result = self.judged, self.result
        judges = judged.scores.get(variant_id, {}) if judged is not None else {}
        calls = judged.calls.get(variant_id, []) if judged is not None else []
        scores = (
            scored if result.resumed_calls else {k: v for k, v in scored.items() if k in judges}
        )
        if not scores and not calls:
            return
        try:
            untraced = log_call_scores(
                self.store.client, result.experiment_id, run_id, variant_id, scores, calls
            )
        except Exception as e:  # noqa: BLE001 - reported in the run's summary, as the report is
            result.problems.append(
                f"could not write the assessments or judge traces: {one_line(e)}"
            )
            return
        if untraced and result.resumed_calls:
            result.problems.append(
                f"{variant_id}: {untraced} scored call(s) have no trace, so no assessment: "
                "their scores are in the metrics and calls.json only"
            )

    def _log_trained_model(self, run_id: str, variant_id: str) -> None:
        """A model trained in the run (provider sklearn) logs itself on its variant run; a
        failure is reported, never fatal."""
        provider = self.providers.get(variant_id)
        if getattr(provider, "pipeline", None) is None:
            return
        try:
            log_trained_model(self.store.client, run_id, provider.pipeline, provider.training)
        except Exception as e:  # noqa: BLE001 - reported in the run's summary, as the report is
            self.result.problems.append(f"could not log the model of {variant_id}: {one_line(e)}")


def run_totals(comparison: Comparison) -> dict[str, float]:
    """The parent run's metrics, so that its row in the runs table is not empty: the measured
    calls and failures of every variant, and what they cost (absent when one is unpriced)."""
    rows = [r for r in comparison.rows if not r.skipped]
    n_calls = sum(r.n_calls for r in rows)
    totals = {"n_calls": float(n_calls), "n_errors": float(sum(r.n_errors for r in rows))}
    if n_calls:
        totals["error_rate"] = totals["n_errors"] / n_calls
    costs = [r.estimated_cost_usd for r in rows]
    if rows and None not in costs:
        totals["estimated_cost_usd"] = float(sum(c for c in costs if c is not None))
    return totals
