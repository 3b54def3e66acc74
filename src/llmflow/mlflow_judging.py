"""`type: mlflow` checks: MLflow's built-in judges grade each variant's traced answers after
`llmflow run`'s session and in `llmflow score` (rescore.py's judge_with_mlflow and
_rescore_variant call them).

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

from .config.scorers import mlflow_judge_entry
from .redact import one_line
from .scoring import CaseChecks, Score
from .tracking.assessments import JUDGE_KEY
from .tracking.mlflow_judges import judge_endpoint, mlflow_judges

if TYPE_CHECKING:
    from .config import LoadedExperiment
    from .types import CallRecord

CallKey = tuple[str, int]
_PARALLEL = 8  # judge calls in flight at once, per judge


def has_mlflow_judges(loaded: LoadedExperiment) -> bool:
    return any(spec.type == "mlflow" for spec in loaded.config.scorers or ())


def mlflow_judge_scores(
    loaded: LoadedExperiment,
    table: dict[str, CaseChecks],
    records: Sequence[CallRecord],
    current: dict[CallKey, tuple[str, dict[str, Any]]],
    unreachable: dict[str, Score] | None = None,
) -> dict[CallKey, list[Score]]:
    """The `type: mlflow` verdicts on each traced answer (`current`: assessment_sync's), by
    call; a verdict the trace holds from the same judge is kept, not asked again. A judge found
    `unreachable` (by check name; shared across calls) is not asked again: MLflow tries a
    server 11 times, minutes, before it gives up."""
    unreachable = {} if unreachable is None else unreachable
    named = {n: s for c in table.values() for n, s in c.checks if s.type == "mlflow"}
    answered = [
        r
        for r in records
        if r.ok and not r.warmup and r.completion and (r.case_id, r.repeat) in current
    ]
    scores: dict[CallKey, list[Score]] = {}
    for name, spec in named.items():
        for key, score in _judge_all(loaded, (name, spec), table, answered, current, unreachable):
            scores.setdefault(key, []).append(score)
    return scores


def _judge_all(
    loaded: LoadedExperiment,
    check: tuple[str, Any],
    table: dict[str, CaseChecks],
    answered: list[CallRecord],
    current: dict[CallKey, tuple[str, dict[str, Any]]],
    unreachable: dict[str, Score],
) -> list[tuple[CallKey, Score]]:
    """One `type: mlflow` check's verdicts on the answers, asked in parallel."""
    name, spec = check
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
        if name in unreachable:
            return unreachable[name]
        score = _verdict(scorer, name, signature, record, table[record.case_id].expected)
        if score.error is not None and score.error.startswith(_UNREACHABLE):
            unreachable.setdefault(name, score)
        return score

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
        if _is_unreachable(e):
            why = f"{_UNREACHABLE}: {one_line(e)}"
            return Score(name, None, False, why, "LLM_JUDGE", error=why, judge=signature)
        value, error = "", e
    if error is None and value in ("yes", "no"):
        passed = value == "yes"
        return Score(name, passed, passed, found.rationale or "", "LLM_JUDGE", judge=signature)
    why = (
        f"MLflow judge failed: {one_line(getattr(error, 'error_message', None) or error or value)}"
    )
    return Score(name, None, False, why, "LLM_JUDGE", error=why, judge=signature)


_UNREACHABLE = "MLflow judge unreachable"


def _is_unreachable(error: BaseException) -> bool:
    """MLflow's adapter gave up on the server (connection refused or timed out, after its
    retries), not on one answer."""
    import requests

    return isinstance(error.__cause__, requests.exceptions.ConnectionError | requests.Timeout)


def _kept(name: str, old: Any, signature: str) -> Score | None:
    """The verdict a trace holds from this very judge, as a Score; None to ask again."""
    metadata = (old.metadata or {}) if old is not None else {}
    if old is None or metadata.get(JUDGE_KEY) != signature or old.value is None:
        return None
    passed = metadata.get("passed") == "true"
    return Score(name, old.value, passed, old.rationale or "", "LLM_JUDGE", judge=signature)


def _signature(judge: str | None, entry: Any, guidelines: Any) -> str:
    """What makes two verdicts the same judge's: the judge, its model and server, its rules."""
    what = json.dumps([judge, entry.provider, entry.model_name, entry.base_url, guidelines])
    return f"mlflow:{judge}:{hashlib.sha256(what.encode()).hexdigest()[:16]}"
