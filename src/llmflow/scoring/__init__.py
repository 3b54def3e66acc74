"""Quality: scores of each call's answer, and the per-variant metrics they give.

A score is data about a call, like its latency. The checks of a call are the experiment's
`scorers:` followed by its prompt's `assert:`; each gives a Score (value, passed, rationale,
source). Only successful, measured (not warmup) calls are scored: a failed call is counted in
error_rate, never as a failed check. A check that does not apply (rouge-l without `expected`,
latency of a cached answer) gives no score. A check that could not be made (a judge's
unparseable answer) is a score with `error` set and passed False: never a silent pass.
"""

from __future__ import annotations

from ..stats import wilson_interval
from .scores import (
    CallKey,
    CaseChecks,
    Score,
    call_passed,
    case_table,
    check_types,
    has_checks,
    quality_metrics,
    score_record,
    score_records,
)
from .specs import ScorerSpec

__all__ = [
    "CallKey",
    "CaseChecks",
    "Score",
    "ScorerSpec",
    "call_passed",
    "case_table",
    "check_types",
    "has_checks",
    "quality_metrics",
    "score_record",
    "score_records",
    "wilson_interval",
]
