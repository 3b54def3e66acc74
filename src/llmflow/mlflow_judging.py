"""`type: mlflow` checks: MLflow's built-in judges grade each variant's traced answers after
`llmflow run`'s session and in `llmflow score`.

They run in the process that ran the variants, once its traces are written. Each verdict is an
assessment on the call's trace, named as the check (MLflow's own name by default:
`correctness`), with an LLM_JUDGE source; its pass rate is the variant's `score.<name>` metric,
so the comparison and the report show it as they show an llmflow judge's. It stays out of
`pass_rate`, which the run computes before these judges answer.

A verdict is asked once: a trace that holds one from the same judge (its signature in the
assessment's metadata) keeps it, so scoring again with an unchanged file pays nothing.
MLflow is imported only here, and only for a file that has such a check.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from .redact import one_line
from .scoring import CaseChecks, Score

if TYPE_CHECKING:
    from .config import LoadedExperiment
    from .report.comparison import Comparison
    from .types import CallRecord

CallKey = tuple[str, int]
_PARALLEL = 8  # judge calls in flight at once, per judge


def has_mlflow_judges(loaded: LoadedExperiment) -> bool:
    return any(spec.type == "mlflow" for spec in loaded.config.scorers or ())


def judge_run(loaded: LoadedExperiment, result: Any) -> Comparison:
    """Judge every variant of a finished `llmflow run` (its RunResult), write the verdicts and
    their metrics, rebuild the parent's comparison and report; the new comparison."""
    from mlflow.entities import Metric

    from .report import load_comparison
    from .rescore import _refresh_parent, _variant_runs
    from .scoring import case_table
    from .tracking.assessment_sync import current_assessments, sync_scores
    from .tracking.runs import TAG_VARIANT, RunStore

    store = RunStore(result.tracking_uri)
    client, table = store.client, case_table(loaded) or {}
    for run in _variant_runs(client, result.parent_run_id):
        variant_id = run.data.tags.get(TAG_VARIANT, "")
        ids = (run.info.experiment_id, run.info.run_id)
        current = current_assessments(client, *ids, variant_id)
        scores = mlflow_judge_scores(loaded, table, result.records.get(variant_id, []), current)
        sync_scores(client, current, scores)
        metrics = [Metric(k, v, 0, 0) for k, v in judge_metrics(scores).items()]
        if metrics:
            client.log_batch(run.info.run_id, metrics=metrics)
    _refresh_parent(store, result.experiment_name, result.parent_run_id, force=True)
    return load_comparison(client, result.experiment_name, result.parent_run_id)


def mlflow_judge_scores(
    loaded: LoadedExperiment,
    table: dict[str, CaseChecks],
    records: Sequence[CallRecord],
    current: dict[CallKey, tuple[str, dict[str, Any]]],
) -> dict[CallKey, list[Score]]:
    """The `type: mlflow` verdicts on each traced answer (`current`: assessment_sync's), by
    call; a verdict the trace holds from the same judge is kept, not asked again."""
    named = {n: s for c in table.values() for n, s in c.checks if s.type == "mlflow"}
    answered = [
        r
        for r in records
        if r.ok and not r.warmup and r.completion and (r.case_id, r.repeat) in current
    ]
    scores: dict[CallKey, list[Score]] = {}
    for name, spec in named.items():
        for key, score in _judge_all(loaded, name, spec, table, answered, current):
            scores.setdefault(key, []).append(score)
    return scores


def _judge_all(
    loaded: LoadedExperiment,
    name: str,
    spec: Any,
    table: dict[str, CaseChecks],
    answered: list[CallRecord],
    current: dict[CallKey, tuple[str, dict[str, Any]]],
) -> list[tuple[CallKey, Score]]:
    """One `type: mlflow` check's verdicts on the answers, asked in parallel."""
    from .config.scorers import mlflow_judge_entry
    from .tracking.mlflow_judges import judge_endpoint, mlflow_judges

    entry = mlflow_judge_entry(spec, loaded.config.models)
    (scorer,) = mlflow_judges([spec.judge or ""], entry, spec.guidelines)
    signature = _signature(spec.judge, entry, spec.guidelines)
    found, asking = [], []
    for record in answered:
        key = (record.case_id, record.repeat)
        kept = _kept(name, current[key][1].get(name), signature)
        if kept is not None:
            found.append((key, kept))
        elif record.case_id in table:
            asking.append(record)

    def ask(record: CallRecord) -> Score:
        return _verdict(scorer, name, signature, record, table[record.case_id].expected)

    with judge_endpoint(entry), ThreadPoolExecutor(_PARALLEL) as pool:
        verdicts = list(pool.map(ask, asking))
    found += [((r.case_id, r.repeat), v) for r, v in zip(asking, verdicts, strict=True)]
    return found


def judge_metrics(scores: dict[CallKey, list[Score]]) -> dict[str, float]:
    """score.<name>: each MLflow judge's pass rate over the calls it judged (errors left out)."""
    values: dict[str, list[float]] = {}
    for found in scores.values():
        for score in found:
            if score.error is None and score.value is not None:
                values.setdefault(score.name, []).append(float(score.value))
    return {f"score.{name}": sum(v) / len(v) for name, v in sorted(values.items())}


def with_mlflow_judges(
    scores: dict[CallKey, list[Score]], judged: dict[CallKey, list[Score]]
) -> dict[CallKey, list[Score]]:
    """Both sets of scores, by call."""
    merged = {key: list(found) for key, found in scores.items()}
    for key, found in judged.items():
        merged.setdefault(key, []).extend(found)
    return merged


def _verdict(scorer: Any, name: str, signature: str, record: Any, expected: str | None) -> Score:
    """One judge's verdict on one answer: pass for "yes"; a failed call is a score error."""
    given = {
        "inputs": {"messages": [{"role": m.role, "content": m.content} for m in record.messages]},
        "outputs": record.completion.text,
        "expectations": {"expected_response": expected} if expected is not None else None,
    }
    takes = inspect.signature(scorer.__call__).parameters  # Guidelines takes no expectations
    try:
        found = scorer(**{k: v for k, v in given.items() if k in takes})
        value, error = str(found.value), found.error
    except Exception as e:  # the judge's server or its answer: a score error, never a crash
        value, error = "", e
    if error is None and value in ("yes", "no"):
        passed = value == "yes"
        return Score(name, passed, passed, found.rationale or "", "LLM_JUDGE", judge=signature)
    why = (
        f"MLflow judge failed: {one_line(getattr(error, 'error_message', None) or error or value)}"
    )
    return Score(name, None, False, why, "LLM_JUDGE", error=why, judge=signature)


def _kept(name: str, old: Any, signature: str) -> Score | None:
    """The verdict a trace holds from this very judge, as a Score; None to ask again."""
    from .tracking.assessments import JUDGE_KEY

    metadata = (old.metadata or {}) if old is not None else {}
    if old is None or metadata.get(JUDGE_KEY) != signature or old.value is None:
        return None
    passed = metadata.get("passed") == "true"
    return Score(name, old.value, passed, old.rationale or "", "LLM_JUDGE", judge=signature)


def _signature(judge: str | None, entry: Any, guidelines: Any) -> str:
    """What makes two verdicts the same judge's: the judge, its model and server, its rules."""
    what = json.dumps([judge, entry.provider, entry.model_name, entry.base_url, guidelines])
    return f"mlflow:{judge}:{hashlib.sha256(what.encode()).hexdigest()[:16]}"
