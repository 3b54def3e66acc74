"""`llmflow score`: score the stored answers of an existing run again, with the checks of the
(possibly edited) experiment file. No model is called: the answers come from each variant's
calls.json; a judge is asked only what it never answered for that call (rescore_judges.py:
its earlier answers are journaled; one that failed is asked again), in the very words a run
asks it. New scores become new assessments on the same traces (overriding the earlier one of
the same name); every metric the checks feed (pass rate, scores, accuracy, macro F1, unparsed,
the per-label tables), calls.json, the comparison, the report and the metrics the registered
versions record are updated together. Scoring again with unchanged checks changes nothing and
pays nothing.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import LoadedExperiment, load_experiment
from .errors import ConfigError, LlmflowError
from .mlflow_judging import judge_metrics, mlflow_judge_scores, with_mlflow_judges
from .scoring import CaseChecks, case_table, quality_metrics, score_records
from .tracking.artifacts import has_artifact
from .tracking.assessment_sync import current_assessments, sync_scores
from .tracking.calls_table import calls_table, records_from_rows
from .tracking.mlflow_sources import StoreSources
from .tracking.read import calls_table as calls_table_of
from .tracking.read import read_comparison, variant_runs
from .tracking.run_inputs import stored_prompts
from .tracking.runs import RunStore
from .tracking.schema import (
    CALLS_TABLE,
    COMPARISON_JSON,
    CONFIG_DIR,
    KIND_PARENT,
    REPORT_DIR,
    TAG_CONFIG_FILE,
    TAG_KIND,
    TAG_VARIANT,
)
from .types import CallRecord, Message

if TYPE_CHECKING:
    from .report.comparison import Comparison
    from .rescore_judges import ScoreLedger
    from .run_types import RunResult
    from .scoring.judge import Judged

BASE_COLUMNS = tuple(calls_table([]))


@dataclass
class RescoreResult:
    parent_run_id: str
    variants: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> metrics
    assessments: int = 0  # assessments written (0 when nothing changed)
    untraced: int = 0  # scored calls without a trace to carry their assessments
    changed: bool = False
    registry: list[str] = field(default_factory=list)  # registered versions that record anew
    judge_calls: int = 0  # judge calls made (paid) now
    judge_failures: list[str] = field(default_factory=list)  # judge calls that failed, why


def rescore(
    store: RunStore,
    experiment: str,
    run_id: str | None,
    config: Path | None,
    journal_dir: Path | None = None,
) -> RescoreResult:
    """Score the run again; see the module docstring. ConfigError when the file checks nothing
    or cannot be read; LlmflowError when the run is not found, is still running, or another
    `llmflow score` of it is under way."""
    from .registry.rescored import refresh_versions
    from .rescore_judges import ScoreLedger, scoring_lock

    client = store.client
    parent_id = read_comparison(client, experiment, run_id).parent_run_id
    _refuse_unfinished(client, parent_id)
    loaded = config_of(client, parent_id, config)
    checks = case_table(loaded)
    if checks is None:
        raise ConfigError(f"{loaded.path.name}: no scorers: or assert: to score with")
    _check_writable(client, parent_id)
    result = RescoreResult(parent_id)
    with scoring_lock(store.tracking_uri, parent_id):
        ledger = ScoreLedger(client, parent_id, journal_dir)
        runs = variant_runs(client, client.get_run(parent_id).info.experiment_id, parent_id)
        try:
            for run in runs:
                result.changed |= _rescore_variant(store, run, checks, result, loaded, ledger)
        finally:
            ledger.store()
        result.judge_calls = len(ledger.made)
        # also when nothing changed now: a score stopped before this step left it stale
        _refresh_parent(store, experiment, parent_id, force=result.changed)
        # every time, not only on a change: a registry left stale by an earlier score is mended
        result.registry = refresh_versions(client, [run.info.run_id for run in runs])
    return result


def judge_with_mlflow(loaded: LoadedExperiment, result: RunResult) -> Comparison:
    """After `llmflow run`'s session: MLflow's judges (`type: mlflow`, mlflow_judging.py) grade
    every variant's traced answers; their verdicts and metrics are written, the parent's
    comparison and report rebuilt. The new comparison."""
    from mlflow.entities import Metric

    store = RunStore(result.tracking_uri)
    client, table = store.client, case_table(loaded) or {}
    unreachable: dict[str, Any] = {}
    for run in variant_runs(client, result.experiment_id, result.parent_run_id):
        variant_id = run.data.tags.get(TAG_VARIANT, "")
        current = current_assessments(client, run.info.experiment_id, run.info.run_id, variant_id)
        records = result.records.get(variant_id, [])
        scores = mlflow_judge_scores(loaded, table, records, current, unreachable)
        sync_scores(client, current, scores)
        metrics = [Metric(k, v, 0, 0) for k, v in judge_metrics(scores).items()]
        if metrics:
            client.log_batch(run.info.run_id, metrics=metrics)
    return _refresh_parent(store, result.experiment_name, result.parent_run_id, force=True)


def _refuse_unfinished(client: Any, parent_id: str) -> None:
    """A run still RUNNING (under way, or stopped by kill -9 or an outage) is finished by
    `llmflow run --resume`, which journals its judges; scoring it now would race that."""
    if client.get_run(parent_id).info.status == "RUNNING":
        raise LlmflowError(
            f"run {parent_id} is still RUNNING: score it once it has ended (a run stopped by a "
            f"kill or an outage ends with `llmflow run FILE --resume {parent_id}`)"
        )


def _check_writable(client: Any, parent_id: str) -> None:
    """Before any judge is paid: a user who may only read the run (an MLflow server's READ
    permission) is told so in one line, instead of after the judges' calls."""
    from mlflow.exceptions import MlflowException

    try:  # the tag it has, written again: nothing changes for a user who may write
        client.set_tag(parent_id, TAG_KIND, KIND_PARENT)
    except MlflowException as e:
        if e.get_http_status_code() in (401, 403):
            raise LlmflowError(
                f"run {parent_id} cannot be scored: this user may read it but not write it "
                f"({e.error_code}); nothing was scored and no judge was asked"
            ) from e
        raise


def config_of(client: Any, parent_id: str, config: Path | None) -> LoadedExperiment:
    """The file given, else the run's own copy of its experiment file with the prompt set it
    read (runs made before that was stored: the file's inline prompts only)."""
    if config is not None:
        return load_experiment(config, sources=StoreSources(client.tracking_uri))
    tags = client.get_run(parent_id).data.tags
    name = tags.get(TAG_CONFIG_FILE, "")
    with tempfile.TemporaryDirectory() as tmp:
        stored = f"{CONFIG_DIR}/{name}"
        if not name or not has_artifact(client, parent_id, stored):
            raise ConfigError(f"run {parent_id} has no stored experiment file: pass --config FILE")
        path = Path(client.download_artifacts(parent_id, stored, tmp))
        try:
            return load_experiment(path, stored_prompts(client, parent_id, tmp))
        except ConfigError as e:
            raise ConfigError(
                f"{e} (the copy stored in run {parent_id}: pass --config FILE)"
            ) from e


def _rescore_variant(
    store: RunStore,
    run: Any,
    checks: dict[str, CaseChecks],
    result: RescoreResult,
    loaded: LoadedExperiment,
    ledger: ScoreLedger,
) -> bool:
    """Score one variant's stored answers; True when anything was written."""
    from .quality_outputs import classification
    from .scoring.judge import with_judges
    from .scoring.tables import add_score_columns

    client, run_id = store.client, run.info.run_id
    stored = calls_table_of(client, run_id)
    if stored is None:  # a run killed before its table was written has none to score
        return False
    columns = stored.as_columns()
    variant_id = run.data.tags.get(TAG_VARIANT, "")
    records = records_from_rows(variant_id, stored.rows(), asked_messages(loaded))
    judged = _judge(variant_id, records, checks, loaded, ledger)
    scores = with_judges(score_records(records, checks), judged, variant_id) or {}
    metrics = quality_metrics(scores)
    if judged is not None:
        result.judge_failures += judged.failures
        cost = ledger.cost_usd(variant_id, run.data.metrics.get("judge_cost_usd"))
        if cost is not None:
            metrics["judge_cost_usd"] = cost
    metrics.update(classification(store, run_id, loaded, records, checks))
    current = current_assessments(client, run.info.experiment_id, run_id, variant_id)
    mlflow_judged = mlflow_judge_scores(loaded, checks, records, current)
    metrics.update(judge_metrics(mlflow_judged))
    result.variants[run.data.tags.get(TAG_VARIANT, run_id)] = metrics
    new = _log_metrics(client, run, metrics)
    table = {name: values for name, values in columns.items() if name in BASE_COLUMNS}
    add_score_columns(table, records, scores)
    table_changed = table != columns
    if table_changed:
        store.log_table(run_id, table, CALLS_TABLE)
    written, untraced = sync_scores(client, current, with_mlflow_judges(scores, mlflow_judged))
    result.assessments += written
    result.untraced += untraced
    if judged is not None:
        made = {e.id for e in ledger.made}
        calls = [c for c in judged.calls.get(variant_id, []) if c.entry_id in made]
        _trace_judges(client, run, current, calls)
    return bool(new) or table_changed or bool(written)


def _log_metrics(client: Any, run: Any, metrics: dict[str, float]) -> dict[str, float]:
    """Log the metrics that changed; one that checks fed and no longer do (a check removed from
    the file, or that scores nothing now) becomes NaN, which the comparison and the report skip:
    MLflow cannot delete a metric, and its last value would otherwise still show. The metrics
    logged."""
    from mlflow.entities import Metric

    from .quality_outputs import stale

    old = run.data.metrics
    new = {k: v for k, v in metrics.items() if old.get(k) != v}
    new.update(stale(old, metrics))
    if new:
        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, now, 0) for k, v in new.items()])
    return new


def _trace_judges(client: Any, run: Any, current: dict[Any, Any], calls: list[Any]) -> None:
    """The judge calls just made, as traces beside the calls they graded."""
    from .tracking.call_scores import write_judge_traces
    from .tracking.traces import call_tag

    by_tag = {call_tag(*key): trace_id for key, (trace_id, _) in current.items()}
    write_judge_traces(client, run.info.experiment_id, run.info.run_id, calls, by_tag)


def asked_messages(loaded: LoadedExperiment) -> dict[str, tuple[Message, ...]]:
    """The messages of each case of the file (prompt_sizes included), by case id."""
    from .plan import sized_cases

    sizes = loaded.config.prompt_sizes
    return {c.id: c.messages for p in loaded.prompts for c in sized_cases(p, sizes)}


def _judge(
    variant_id: str,
    records: list[CallRecord],
    checks: dict[str, CaseChecks],
    loaded: LoadedExperiment,
    ledger: ScoreLedger,
) -> Judged | None:
    """The judges' verdicts: those answered before (the ledger) read again, the others asked
    now (and journaled in the ledger as each ends); None when no check is a judge."""
    import asyncio

    from .judging import judge_records
    from .scoring.judge import has_judges

    if not has_judges(checks):
        return None
    return asyncio.run(
        judge_records(
            {variant_id: records},
            checks,
            concurrency=loaded.config.concurrency,
            config_name=loaded.path.name,
            known=list(ledger.entries),
            on_judged=ledger.append,
            budget=_judge_budget(loaded, ledger),
        )
    )


def _judge_budget(loaded: LoadedExperiment, ledger: Any) -> Any:
    """The file's max_cost_usd bounds what `llmflow score` pays its judges too, counting what
    the run and earlier scores paid them (the ledger's entries)."""
    from .budget import Budget

    limit = loaded.config.max_cost_usd
    if limit is None:
        return None
    return Budget.after(limit, [entry.record for entry in ledger.entries])


def _refresh_parent(store: RunStore, experiment: str, parent_id: str, force: bool) -> Comparison:
    """The comparison and, when the run has one, the report, rebuilt from MLflow: when the
    variants changed now (`force`), or when the comparison the parent holds is not theirs.
    The comparison."""
    from .report import comparison_artifacts
    from .tracking.artifacts import read_text

    client = store.client
    comparison = read_comparison(client, experiment, parent_id)
    artifacts = comparison_artifacts(comparison)
    stored = read_text(client, parent_id, COMPARISON_JSON)
    if not force and stored == artifacts[COMPARISON_JSON]:
        return comparison
    for path, text in artifacts.items():
        client.log_text(parent_id, text, path)
    if has_artifact(client, parent_id, REPORT_DIR):
        from .report.render import write_report
        from .stored_report import load_report_data

        with tempfile.TemporaryDirectory() as tmp:
            write_report(load_report_data(client, experiment, parent_id), Path(tmp))
            client.log_artifacts(parent_id, tmp, REPORT_DIR)
    return comparison
