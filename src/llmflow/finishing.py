"""The end of a run: each variant's metrics, scores and tables, the judges' assessments, the
comparison, the report and the parent run. Whatever the status, every call paid for is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .config import LoadedExperiment
from .journal import journal_path
from .plan import Plan, Variant
from .redact import one_line
from .run_types import RunResult
from .scoring import case_table
from .stats import summarize

if TYPE_CHECKING:
    from .report import Comparison
    from .scoring.judge import Judged
    from .tracking.runs import RunStore


def finish_runs(
    store: RunStore,
    loaded: LoadedExperiment,
    plan: Plan,
    result: RunResult,
    run_ids: dict[str, str],
    status: str,
    judged: Judged | None,
    journal_dir: Path | None,
    report_dir: Path | None,
) -> Comparison:
    """Write every variant run, then the parent run with the comparison (and the report when
    the file asks); the runs end with `status` (a skipped variant's as FAILED)."""
    from .report import comparison_artifacts, load_comparison

    skipped = {s.variant.id: s.reason for s in result.skipped}
    for variant in plan.variants:
        _finish_variant(
            store,
            loaded,
            variant,
            result,
            run_ids[variant.id],
            status,
            judged,
            skipped.get(variant.id),
        )
    comparison = load_comparison(store.client, result.experiment_name, result.parent_run_id)
    if loaded.config.report:
        from .report.publish import publish_report

        problem = publish_report(
            store.client, result.experiment_name, result.parent_run_id, report_dir
        )
        result.problems += [problem] if problem else []
    journal = journal_path(result.parent_run_id, journal_dir)
    store.finish_parent(result.parent_run_id, comparison_artifacts(comparison), status, journal)
    return comparison


def _finish_variant(
    store: RunStore,
    loaded: LoadedExperiment,
    variant: Variant,
    result: RunResult,
    run_id: str,
    status: str,
    judged: Judged | None,
    skipped: str | None,
) -> None:
    from .scoring import quality_metrics, score_records
    from .scoring.judge import judge_cost_metric, with_judges

    records = result.records.get(variant.id, [])  # a resumed, skipped one keeps its own
    if skipped is not None:
        store.client.set_tag(run_id, "llmflow.skipped", skipped)
    checks = case_table(loaded)  # None when the file has no checks
    scores = score_records(records, checks) if checks is not None else None
    scored = with_judges(scores, judged, variant.id)
    metrics = {**summarize(records), **quality_metrics(scored or {})}
    metrics.update(judge_cost_metric(judged, variant.id))
    store.finish_variant(run_id, records, metrics, "FAILED" if skipped else status, scored)
    if judged is not None and variant.id in judged.scores:
        calls = judged.calls.get(variant.id, [])
        _log_judge_assessments(store, result, run_id, judged.scores[variant.id], calls)


def _log_judge_assessments(store: RunStore, result: RunResult, run_id: str, scores, calls) -> None:
    """The judges' scores as assessments on the traces, now written, and the judge calls as
    traces of their own; a failure is reported, never fatal: the calls and their metrics are
    safe already."""
    from .tracking.assessments import log_call_scores

    try:
        log_call_scores(store.client, result.experiment_id, run_id, scores, calls)
    except Exception as e:  # noqa: BLE001 - reported in the run's summary, as the report is
        result.problems.append(f"could not write the judge assessments or traces: {one_line(e)}")
