"""`llmflow score`: score the stored answers of an existing run again, with the checks of the
(possibly edited) experiment file. No model is called: the answers come from each variant's
calls.json; only judges are asked again, and only where a judge changed (its entry, rubric or
threshold) or has no stored verdict. New scores become new assessments on the same traces
(overriding the earlier one of the same name); the variant metrics, calls.json, the comparison,
the report and the metrics the registered versions record are updated. Scoring again with
unchanged checks changes nothing.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import LoadedExperiment, load_experiment
from .errors import ConfigError
from .scoring import CaseChecks, Score, case_table, quality_metrics, score_records
from .tracking.artifacts import has_artifact, read_json
from .tracking.run_inputs import stored_prompts
from .tracking.runs import KIND_VARIANT, TAG_KIND, TAG_VARIANT, RunStore, calls_table
from .types import CallRecord, Completion, Cost, GenerationSettings, Message, Timing, Usage

if TYPE_CHECKING:
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


def rescore(
    store: RunStore, experiment: str, run_id: str | None, config: Path | None
) -> RescoreResult:
    """Score the run again; see the module docstring. ConfigError when the file checks nothing
    or cannot be read; LlmflowError (from load_comparison) when the run is not found."""
    from .registry.rescored import refresh_versions
    from .report import load_comparison

    client = store.client
    parent_id = load_comparison(client, experiment, run_id).parent_run_id
    loaded = config_of(client, parent_id, config)
    checks = case_table(loaded)
    if checks is None:
        raise ConfigError(f"{loaded.path.name}: no scorers: or assert: to score with")
    result = RescoreResult(parent_id)
    runs = _variant_runs(client, parent_id)
    for run in runs:
        result.changed |= _rescore_variant(store, run, checks, result, loaded)
    if result.changed:
        _refresh_parent(store, experiment, parent_id)
    # every time, not only on a change: a registry left stale by an earlier score is mended
    result.registry = refresh_versions(client, [run.info.run_id for run in runs])
    return result


def config_of(client: Any, parent_id: str, config: Path | None) -> LoadedExperiment:
    """The file given, else the run's own copy of its experiment file with the prompt set it
    read (runs made before that was stored: the file's inline prompts only)."""
    if config is not None:
        return load_experiment(config)
    tags = client.get_run(parent_id).data.tags
    name = tags.get("llmflow.config_file", "")
    with tempfile.TemporaryDirectory() as tmp:
        stored = f"config/{name}"
        if not name or not has_artifact(client, parent_id, stored):
            raise ConfigError(f"run {parent_id} has no stored experiment file: pass --config FILE")
        path = Path(client.download_artifacts(parent_id, stored, tmp))
        try:
            return load_experiment(path, stored_prompts(client, parent_id, tmp))
        except ConfigError as e:
            raise ConfigError(
                f"{e} (the copy stored in run {parent_id}: pass --config FILE)"
            ) from e


def _variant_runs(client: Any, parent_id: str) -> list[Any]:
    parent = client.get_run(parent_id)
    return client.search_runs(
        [parent.info.experiment_id],
        filter_string=(
            f"tags.`mlflow.parentRunId` = '{parent_id}' and tags.`{TAG_KIND}` = '{KIND_VARIANT}'"
        ),
        max_results=10_000,
    )


def _rescore_variant(
    store: RunStore,
    run: Any,
    checks: dict[str, CaseChecks],
    result: RescoreResult,
    loaded: LoadedExperiment,
) -> bool:
    """Score one variant's stored answers; True when anything was written."""
    from .scoring.tables import add_score_columns

    client, run_id = store.client, run.info.run_id
    columns = _stored_table(client, run_id)
    if columns is None:
        return False
    variant_id = run.data.tags.get(TAG_VARIANT, "")
    records = records_from_table(variant_id, columns, asked_messages(loaded))
    current = _current_assessments(client, run, variant_id)
    scores = score_records(records, checks)
    judged, judge = _judge_scores(variant_id, records, checks, current, loaded)
    for key, found in judged.items():
        scores.setdefault(key, []).extend(found)
    metrics = quality_metrics(scores)
    judge_cost = judge.cost_usd.get(variant_id) if judge is not None else None
    if judge_cost:
        metrics["judge_cost_usd"] = run.data.metrics.get("judge_cost_usd", 0.0) + judge_cost
    result.variants[run.data.tags.get(TAG_VARIANT, run_id)] = metrics
    new = _log_metrics(client, run, metrics)
    table = {name: values for name, values in columns.items() if name in BASE_COLUMNS}
    add_score_columns(table, records, scores)
    table_changed = table != columns
    if table_changed:
        store.log_table(run_id, table, "calls.json")
    written = _log_new_assessments(client, current, scores)
    result.assessments += written
    result.untraced += sum(1 for key in scores if key not in current)
    if judge is not None:
        _trace_judges(client, run, current, judge.calls.get(variant_id, []))
    return bool(new) or table_changed or bool(written)


def _log_metrics(client: Any, run: Any, metrics: dict[str, float]) -> dict[str, float]:
    """Log the metrics that changed; the mean of a check no longer made (removed from the file,
    or without any value now) becomes NaN, which the comparison and the report skip: MLflow
    cannot delete a metric, and its last value would otherwise still show. The metrics logged."""
    from mlflow.entities import Metric

    old = run.data.metrics
    new = {k: v for k, v in metrics.items() if old.get(k) != v}
    new.update(
        (k, math.nan)
        for k, v in old.items()
        if k.startswith("score.") and k not in metrics and not math.isnan(v)
    )
    if new:
        now = int(time.time() * 1000)
        client.log_batch(run.info.run_id, metrics=[Metric(k, v, now, 0) for k, v in new.items()])
    return new


def _trace_judges(client: Any, run: Any, current: Current, calls: list[Any]) -> None:
    """The judge calls just made, as traces beside the calls they graded."""
    from .tracking.assessments import write_judge_traces
    from .tracking.traces import call_tag

    by_tag = {call_tag(*key): trace_id for key, (trace_id, _) in current.items()}
    write_judge_traces(client, run.info.experiment_id, run.info.run_id, calls, by_tag)


def _stored_table(client: Any, run_id: str) -> dict[str, list[Any]] | None:
    table = read_json(client, run_id, "calls.json")
    if table is None:  # a run killed before its table was written has none to score
        return None
    names = table["columns"]
    return {name: [row[i] for row in table["data"]] for i, name in enumerate(names)}


def asked_messages(loaded: LoadedExperiment) -> dict[str, tuple[Message, ...]]:
    """The messages of each case of the file (prompt_sizes included), by case id."""
    from .plan import sized_cases

    sizes = loaded.config.prompt_sizes
    return {c.id: c.messages for p in loaded.prompts for c in sized_cases(p, sizes)}


def records_from_table(
    variant_id: str,
    columns: dict[str, list[Any]],
    asked: dict[str, tuple[Message, ...]] | None = None,
) -> list[CallRecord]:
    """The calls as far as scoring needs them: the messages asked (the file's for the case when
    they give the stored prompt, so that a judge is asked what the run asked it), the answer,
    its latency, cost and cache flag."""
    from .tracking.runs import prompt_messages

    asked = asked or {}
    records = []
    for i in range(len(columns["case"])):
        error = columns["error"][i]
        latency, cost = columns["latency_s"][i], columns["cost_usd"][i]
        error_type, _, message = (error or "").partition(": ")
        records.append(
            CallRecord(
                variant_id=variant_id,
                case_id=columns["case"][i],
                repeat=int(columns["repeat"][i]),
                messages=prompt_messages(columns["prompt"][i] or "", asked.get(columns["case"][i])),
                settings=GenerationSettings(),
                completion=None if error else Completion(columns["response"][i] or "", Usage()),
                timing=Timing(latency, None, 0, 0) if latency is not None else None,
                cost=Cost(columns["cost_kind"][i] or "unpriced", cost),
                error_type=error_type or None,
                error_message=message or None,
                cached=bool(columns["cached"][i]),
            )
        )
    return records


Current = dict[tuple[str, int], tuple[str, dict[str, Any]]]  # call -> (trace id, by name)


def _current_assessments(client: Any, run: Any, variant_id: str) -> Current:
    """Each traced model call's valid assessments, by name (judge calls' traces left out)."""
    from .tracking.traces import call_key, call_traces

    current: Current = {}
    traces = call_traces(client, run.info.experiment_id, run.info.run_id, variant_id)
    for tag, info in traces.items():
        if (key := call_key(tag)) is not None:
            valid = {a.name: a for a in info.assessments if a.valid is not False}
            current[key] = (info.trace_id, valid)
    return current


def _judge_scores(
    variant_id: str,
    records: list[CallRecord],
    checks: dict[str, CaseChecks],
    current: Current,
    loaded: LoadedExperiment,
) -> tuple[dict[tuple[str, int], list[Score]], Judged | None]:
    """The judges' scores: reused from the traces while a judge is unchanged (same entry,
    rubric and threshold), else asked again (only the judges are called, and what they are
    asked is returned: their calls and cost)."""
    import asyncio

    from .scoring.judge import has_judges, judge_records, signature
    from .tracking.assessments import JUDGE_KEY, score_of

    if not has_judges(checks):
        return {}, None
    reused: dict[tuple[str, int], list[Score]] = {}
    stale = []
    for record in records:
        case = checks.get(record.case_id)
        if case is None or not record.ok or record.warmup:
            continue
        judges = [(name, spec) for name, spec in case.checks if spec.type == "judge"]
        existing = current.get((record.case_id, record.repeat), ("", {}))[1]
        stored = [existing.get(name) for name, _ in judges]
        if all(
            a is not None and (a.metadata or {}).get(JUDGE_KEY) == signature(spec)
            for a, (_, spec) in zip(stored, judges, strict=True)
        ):
            if stored:
                reused[(record.case_id, record.repeat)] = [score_of(a) for a in stored]
        else:
            stale.append(record)
    if not stale:
        return reused, None
    judged = asyncio.run(
        judge_records(
            {variant_id: stale},
            checks,
            concurrency=loaded.config.concurrency,
            config_name=loaded.path.name,
        )
    )
    reused.update(judged.scores.get(variant_id, {}))
    return reused, judged


def _log_new_assessments(
    client: Any, current: Current, scores: dict[tuple[str, int], list[Score]]
) -> int:
    """Log the scores that differ from the trace's current assessment of that name (which the
    new one overrides); the number logged."""
    from .tracking.assessments import log_scores

    pending: list[tuple[str, Score, str | None]] = []
    for key, found in scores.items():
        if key not in current:
            continue
        trace_id, existing = current[key]
        for score in found:
            old = existing.get(score.name)
            if old is not None and _same(old, score):
                continue
            pending.append((trace_id, score, old.assessment_id if old else None))
    log_scores(client, [(t, s) for t, s, _ in pending], overrides=[o for _, _, o in pending])
    return len(pending)


def _same(assessment: Any, score: Score) -> bool:
    value = None if score.error else score.value
    from .tracking.assessments import JUDGE_KEY

    judge = (assessment.metadata or {}).get(JUDGE_KEY)
    return (
        assessment.value == value
        and assessment.rationale == score.rationale
        and (judge == score.judge)
    )


def _refresh_parent(store: RunStore, experiment: str, parent_id: str) -> None:
    """The comparison and, when the run has one, the report, rebuilt from MLflow."""
    from .report import comparison_artifacts, load_comparison

    client = store.client
    comparison = load_comparison(client, experiment, parent_id)
    for path, text in comparison_artifacts(comparison).items():
        client.log_text(parent_id, text, path)
    if has_artifact(client, parent_id, "report"):
        from .report.data import load_report_data
        from .report.render import write_report

        with tempfile.TemporaryDirectory() as tmp:
            write_report(load_report_data(client, experiment, parent_id), Path(tmp))
            client.log_artifacts(parent_id, tmp, "report")
