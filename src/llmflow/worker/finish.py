"""The end of a run, in the worker, with the calls it kept: each variant's metrics, scores and
tables, the judges' assessments, a trained model, the comparison, the report rendered and
stored, then the parent run. Whatever the status, every call paid for is written."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from ..journal import journal_path
from ..plan import Variant
from ..quality_outputs import classification
from ..redact import one_line
from ..report.publish import REPORT_FAILED, headline_of, render_report
from ..scoring import CaseChecks, quality_metrics, score_records
from ..stats import summarize
from ..tracking.schema import TAG_SKIPPED
from .protocol import Finished, FinishRun
from .tracing import RunState

if TYPE_CHECKING:
    from ..report import Comparison
    from ..report.data import ReportData
    from ..scoring import Score
    from ..tracking.runs import RunStore

# a variant's calls table as written: column name -> values
Table = dict[str, list[object]]


class TrainedInRun(Protocol):
    """A provider whose model is trained in the run (provider sklearn)."""

    pipeline: object
    training: dict[str, float]


def finish_run(store: RunStore, run: RunState, request: FinishRun) -> Finished:
    """Finish every run of `run` as `request` says; what the parent reports."""
    traces = run.counts()  # every trace sent before the request is written by now
    finish = Finish(store, run, request)
    comparison = finish.variants()
    report = finish.report_data(comparison)
    headline, stored = finish.parent(comparison, report)
    return Finished(comparison, traces, tuple(finish.problems), headline, stored)


@dataclass
class Finish:
    store: RunStore
    run: RunState
    request: FinishRun
    problems: list[str] = field(default_factory=list)  # each a line of the run's summary
    # each variant run's calls table as written, by run id: the report reads them from here
    tables: dict[str, Table] = field(default_factory=dict)

    @property
    def parent_run_id(self) -> str:
        assert self.run.begun is not None
        return self.run.begun.parent_run_id

    def variants(self) -> Comparison:
        """Write every variant run, ended with the status (a skipped variant's as FAILED); the
        comparison they make."""
        from ..tracking.read import read_comparison as load_comparison

        skipped = {s.variant.id: s.reason for s in self.request.skipped}
        run_ids = self.request.run_ids
        for variant in self.run.plan.variants:
            self._variant(variant, run_ids[variant.id], skipped.get(variant.id))
        experiment = self.run.loaded.config.experiment
        return load_comparison(self.store.client, experiment, self.parent_run_id)

    def report_data(self, comparison: Comparison) -> ReportData | None:
        """What the report shows, when the file asks for a report; None, and a line in the
        run's problems, when it cannot be read."""
        from ..stored_report import load_report_data

        loaded = self.run.loaded
        if not loaded.config.report:
            return None
        try:
            return load_report_data(
                self.store.client,
                loaded.config.experiment,
                comparison=comparison,
                known=self.tables,
            )
        except Exception as e:  # noqa: BLE001 - a report that fails must not fail the run
            self.problems.append(f"{REPORT_FAILED}: {one_line(e)}")
            return None

    def parent(
        self, comparison: Comparison, report: ReportData | None
    ) -> tuple[tuple[str, ...], bool]:
        """The parent run: the report rendered into it (and into the user's report_dir), the
        comparison, the journal; ended with the status. The report's headline, and whether
        the report is stored."""
        from ..report import comparison_artifacts

        request, parent_id = self.request, self.parent_run_id
        with tempfile.TemporaryDirectory(prefix="llmflow-report-") as into:
            problem = render_report(report, Path(into), request.report_dir) if report else None
            rendered = report is not None and problem is None
            if rendered:
                try:
                    self.store.client.log_artifacts(parent_id, into, "report")
                except Exception as e:  # noqa: BLE001 - a report that fails must not fail the run
                    self.problems.append(f"{REPORT_FAILED}: {one_line(e)}")
            journal = journal_path(parent_id, request.journal_dir)
            artifacts = comparison_artifacts(comparison)
            totals = run_totals(comparison)
            self.store.finish_parent(parent_id, artifacts, request.status, journal, totals)
        self.problems += [problem] if problem else []
        stored = rendered and not any(p.startswith(REPORT_FAILED) for p in self.problems)
        headline = tuple(headline_of(report)) if report is not None and rendered else ()
        return headline, stored

    @property
    def checks(self) -> dict[str, CaseChecks] | None:
        """What each case is checked with, for every variant; None when the file checks nothing
        (as the parent sent it: the worker is not sent the prompts)."""
        assert self.run.begun is not None
        return self.run.begun.checks

    def _variant(self, variant: Variant, run_id: str, skipped: str | None) -> None:
        from ..scoring.judge import judge_cost_metric, with_judges

        store, judged = self.store, self.request.judged
        # read back from disk at each pass, in (case, repeat) order, never all held at once; a
        # resumed, skipped variant keeps its own
        records = self.run.records.ordered(variant.id)
        if skipped is not None:
            store.client.set_tag(run_id, TAG_SKIPPED, skipped)
        checks = self.checks
        known = self.run.scores.get(variant.id)
        scores = score_records(records, checks, known) if checks is not None else None
        scored = with_judges(scores, judged, variant.id)
        metrics = {**summarize(records), **quality_metrics(scored or {})}
        metrics.update(judge_cost_metric(judged, variant.id))
        metrics.update(classification(store, run_id, self.run.loaded, records, checks))
        ended = "FAILED" if skipped else self.request.status
        self.tables[run_id] = store.finish_variant(
            run_id, records, metrics, ended, scored, in_order=True
        )
        self._assessments(run_id, variant.id, scored or {})
        self._trained_model(run_id, variant.id)

    def _assessments(
        self, run_id: str, variant_id: str, scored: dict[tuple[str, int], list[Score]]
    ) -> None:
        """The judges' scores as assessments on the traces, now written, and the judge calls as
        traces of their own; after a resume, every score (a trace written before a kill or an
        outage may lack its own). Each name once on a trace, however often this is done. A
        failure is reported, never fatal: the calls and their metrics are safe already."""
        from ..tracking.call_scores import log_call_scores

        judged, resumed = self.request.judged, self.request.resumed_calls
        judges = judged.scores.get(variant_id, {}) if judged is not None else {}
        calls = judged.calls.get(variant_id, []) if judged is not None else []
        scores = scored if resumed else {k: v for k, v in scored.items() if k in judges}
        if not scores and not calls:
            return
        experiment_id = self.run.experiment_id
        try:
            untraced = log_call_scores(
                self.store.client, experiment_id, run_id, variant_id, scores, calls
            )
        except Exception as e:  # noqa: BLE001 - reported in the run's summary, as the report is
            self.problems.append(f"could not write the assessments or judge traces: {one_line(e)}")
            return
        if untraced and resumed:
            self.problems.append(
                f"{variant_id}: {untraced} scored call(s) have no trace, so no assessment: "
                "their scores are in the metrics and calls.json only"
            )

    def _trained_model(self, run_id: str, variant_id: str) -> None:
        """A model trained in the run (provider sklearn) logs itself on its variant run; a
        failure is reported, never fatal."""
        from ..tracking.sklearn_model import log_trained_model

        provider = self.request.trained.get(variant_id)
        if getattr(provider, "pipeline", None) is None:
            return
        trained = cast(TrainedInRun, provider)
        try:
            log_trained_model(self.store.client, run_id, trained.pipeline, trained.training)
        except Exception as e:  # noqa: BLE001 - reported in the run's summary, as the report is
            self.problems.append(f"could not log the model of {variant_id}: {one_line(e)}")


def run_totals(comparison: Comparison) -> dict[str, float]:
    """The parent run's metrics, so that its row in the runs table is not empty: the measured
    calls and failures of every variant, and what they cost (absent when one is unpriced)."""
    rows = [r for r in comparison.rows if not r.skipped]
    n_calls = sum(r.n_calls for r in rows)
    totals = {"n_errors": float(sum(r.n_errors for r in rows)), "n_calls": float(n_calls)}
    if n_calls:
        totals["error_rate"] = totals["n_errors"] / n_calls
    costs = [r.estimated_cost_usd for r in rows]
    if rows and None not in costs:
        totals["estimated_cost_usd"] = float(sum(c for c in costs if c is not None))
    return totals
