"""`llmflow score`: score the stored answers of an existing run again, with the checks of the
(possibly edited) experiment file. No model is called: the answers come from each variant's
calls.json. New scores become new assessments on the same traces (overriding the earlier one of
the same name); the variant metrics, calls.json, the comparison and the report are updated.
Scoring again with unchanged checks changes nothing.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import LoadedExperiment, load_experiment
from .errors import ConfigError
from .scoring import CaseChecks, Score, case_table, quality_metrics, score_records
from .tracking.runs import KIND_VARIANT, TAG_KIND, TAG_VARIANT, RunStore, calls_table
from .types import CallRecord, Completion, Cost, GenerationSettings, Timing, Usage

BASE_COLUMNS = tuple(calls_table([]))


@dataclass
class RescoreResult:
    parent_run_id: str
    variants: dict[str, dict[str, float]] = field(default_factory=dict)  # variant -> metrics
    assessments: int = 0  # assessments written (0 when nothing changed)
    changed: bool = False


def rescore(
    store: RunStore, experiment: str, run_id: str | None, config: Path | None
) -> RescoreResult:
    """Score the run again; see the module docstring. ConfigError when the file checks nothing
    or cannot be read; LlmflowError (from load_comparison) when the run is not found."""
    from .report import load_comparison

    client = store.client
    parent_id = load_comparison(client, experiment, run_id).parent_run_id
    loaded = config_of(client, parent_id, config)
    checks = case_table(loaded)
    if checks is None:
        raise ConfigError(f"{loaded.path.name}: no scorers: or assert: to score with")
    if any(spec.type == "judge" for c in checks.values() for _, spec in c.checks):
        raise ConfigError(f"{loaded.path.name}: scorers: type judge: not available yet")
    result = RescoreResult(parent_id)
    for run in _variant_runs(client, parent_id):
        result.changed |= _rescore_variant(store, run, checks, result)
    if result.changed:
        _refresh_parent(store, experiment, parent_id)
    return result


def config_of(client: Any, parent_id: str, config: Path | None) -> LoadedExperiment:
    """The file given, else the experiment file stored in the run (its inline prompts)."""
    if config is not None:
        return load_experiment(config)
    tags = client.get_run(parent_id).data.tags
    name = tags.get("llmflow.config_file", "")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = Path(client.download_artifacts(parent_id, f"config/{name}", tmp))
        except Exception as e:  # any store: a run without its file stored
            raise ConfigError(
                f"run {parent_id} has no stored experiment file: pass --config FILE"
            ) from e
        try:
            return load_experiment(path)
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
    store: RunStore, run: Any, checks: dict[str, CaseChecks], result: RescoreResult
) -> bool:
    """Score one variant's stored answers; True when anything was written."""
    from mlflow.entities import Metric

    from .scoring.tables import add_score_columns

    client, run_id = store.client, run.info.run_id
    columns = _stored_table(client, run_id)
    if columns is None:
        return False
    records = records_from_table(run.data.tags.get(TAG_VARIANT, ""), columns)
    scores = score_records(records, checks)
    metrics = quality_metrics(scores)
    result.variants[run.data.tags.get(TAG_VARIANT, run_id)] = metrics
    new = {k: v for k, v in metrics.items() if run.data.metrics.get(k) != v}
    if new:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in new.items()])
    table = {name: values for name, values in columns.items() if name in BASE_COLUMNS}
    add_score_columns(table, records, scores)
    table_changed = table != columns
    if table_changed:
        store._log_table(run_id, table, "calls.json")
    written = _log_new_assessments(client, run, scores)
    result.assessments += written
    return bool(new) or table_changed or bool(written)


def _stored_table(client: Any, run_id: str) -> dict[str, list[Any]] | None:
    try:
        path = client.download_artifacts(run_id, "calls.json")
    except Exception:  # a run killed before its table was written has none to score
        return None
    table = json.loads(Path(path).read_text())
    names = table["columns"]
    return {name: [row[i] for row in table["data"]] for i, name in enumerate(names)}


def records_from_table(variant_id: str, columns: dict[str, list[Any]]) -> list[CallRecord]:
    """The calls as far as scoring needs them: the answer, its latency, cost and cache flag."""
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
                messages=(),
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


def _log_new_assessments(client: Any, run: Any, scores: dict[tuple[str, int], list[Score]]) -> int:
    """Log the scores that differ from the trace's current assessment of that name (which the
    new one overrides); the number logged."""
    from .tracking.assessments import log_scores
    from .tracking.traces import CALL_TAG

    pending: list[tuple[str, Score, str | None]] = []
    for trace in _traces(client, run):
        case_id, _, repeat = trace.info.tags.get(CALL_TAG, "").rpartition("#")
        if not case_id or not repeat.lstrip("-").isdigit():
            continue
        current = {a.name: a for a in trace.info.assessments if a.valid is not False}
        for score in scores.get((case_id, int(repeat)), []):
            old = current.get(score.name)
            if old is not None and _same(old, score):
                continue
            pending.append((trace.info.trace_id, score, old.assessment_id if old else None))
    log_scores(client, [(t, s) for t, s, _ in pending], overrides=[o for _, _, o in pending])
    return len(pending)


def _same(assessment: Any, score: Score) -> bool:
    value = None if score.error else score.value
    return assessment.value == value and assessment.rationale == score.rationale


def _traces(client: Any, run: Any) -> list[Any]:
    found, token = [], None
    while True:
        page = client.search_traces(
            locations=[run.info.experiment_id],
            run_id=run.info.run_id,
            max_results=500,
            page_token=token,
            include_spans=False,
        )
        found.extend(page)
        token = page.token
        if not token:
            return found


def _refresh_parent(store: RunStore, experiment: str, parent_id: str) -> None:
    """The comparison and, when the run has one, the report, rebuilt from MLflow."""
    from .report import comparison_artifacts, load_comparison

    client = store.client
    comparison = load_comparison(client, experiment, parent_id)
    for path, text in comparison_artifacts(comparison).items():
        client.log_text(parent_id, text, path)
    if any(a.path == "report" for a in client.list_artifacts(parent_id)):
        from .report.data import load_report_data
        from .report.render import write_report

        with tempfile.TemporaryDirectory() as tmp:
            write_report(load_report_data(client, experiment, parent_id), Path(tmp))
            client.log_artifacts(parent_id, tmp, "report")
