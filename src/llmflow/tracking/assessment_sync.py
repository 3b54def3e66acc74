"""Scores onto the traces of their calls, each name once: an assessment already there with the
same verdict is left alone, a different one is overridden (MLflow marks it invalid), a missing
one is added. So a finishing done twice (kill -9, then `--resume`) or a re-scoring never leaves
two valid assessments of one name on a trace, and a trace written before an outage gets the
scores it missed.
"""

from __future__ import annotations

from typing import Any

from ..scoring import Score
from .assessments import log_scores
from .schema import JUDGE_KEY
from .traces import call_key, call_traces

Key = tuple[str, int]  # (case_id, repeat)
Current = dict[Key, tuple[str, dict[str, Any]]]  # call -> (trace id, valid assessments by name)


def current_assessments(client: Any, experiment_id: str, run_id: str, variant_id: str) -> Current:
    """Each traced model call's valid assessments, by name (judge calls' traces left out)."""
    current: Current = {}
    for tag, info in call_traces(client, experiment_id, run_id, variant_id).items():
        if (key := call_key(tag)) is not None:
            valid = {a.name: a for a in info.assessments if a.valid is not False}
            current[key] = (info.trace_id, valid)
    return current


def sync_scores(client: Any, current: Current, scores: dict[Key, list[Score]]) -> tuple[int, int]:
    """Log the scores that differ from (or are missing on) their trace: (assessments written,
    scored calls without a trace to carry them)."""
    pending: list[tuple[str, Score, str | None]] = []
    for key, found in scores.items():
        if key not in current:
            continue
        trace_id, existing = current[key]
        for score in found:
            old = existing.get(score.name)
            if old is not None and same(old, score):
                continue
            pending.append((trace_id, score, old.assessment_id if old else None))
    log_scores(client, [(t, s) for t, s, _ in pending], overrides=[o for _, _, o in pending])
    untraced = sum(1 for key in scores if key not in current)
    return len(pending), untraced


def same(assessment: Any, score: Score) -> bool:
    """The assessment records this very score (value, rationale, judge)."""
    value = None if score.error else score.value
    judge = (assessment.metadata or {}).get(JUDGE_KEY)
    return (
        assessment.value == value
        and assessment.rationale == score.rationale
        and (judge == score.judge)
    )
