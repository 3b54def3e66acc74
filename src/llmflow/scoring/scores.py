"""Scores of each call's answer, and the per-variant metrics they give (the package's
docstring says what a score is)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..config import LoadedExperiment
from ..config.labels import TASK
from ..plan import sized_cases
from ..stats import clustered_rate_interval
from ..types import CallRecord
from .checks import CHECKS
from .guard import CheckGuard
from .labels import label_spec
from .specs import ScorerSpec, row_check_named, unique_labels, with_reference

Source = Literal["CODE", "LLM_JUDGE"]
CallKey = tuple[str, int]  # (case_id, repeat)


@dataclass(frozen=True)
class Score:
    name: str
    value: float | bool | None
    passed: bool
    rationale: str
    source: Source = "CODE"
    error: str | None = None
    judge: str | None = None  # a judge's signature (its entry, rubric, threshold): re-scoring
    # reuses its score while the signature is unchanged


@dataclass(frozen=True)
class CaseChecks:
    """What a case is checked with: its reference answer and its named checks, in order."""

    expected: str | None
    checks: tuple[tuple[str, ScorerSpec], ...]


def case_table(loaded: LoadedExperiment) -> dict[str, CaseChecks] | None:
    """Every case id of the plan (prompt_sizes included) -> its reference and named checks;
    None when the file checks nothing (no quality columns or metrics then)."""
    if not has_checks(loaded):
        return None
    scorers = list(loaded.config.scorers or ())
    if loaded.config.labels and loaded.config.task == TASK:
        scorers.insert(0, label_spec(loaded.config.labels))  # accuracy is this check's pass rate
    # the file's checks are named once, so that each name means one check on every prompt; a
    # prompt's own checks take names none of them holds
    shared = list(zip(unique_labels(scorers), scorers, strict=True))
    taken = [label for label, _ in shared]
    table = {}
    for prompt in loaded.prompts:
        specs = [row_check_named(prompt.id, spec) for spec in prompt.checks]
        own = list(zip(unique_labels(specs, taken), specs, strict=True))
        checks = (*shared, *own)
        for case in sized_cases(prompt, loaded.config.prompt_sizes):
            table[case.id] = CaseChecks(prompt.expected, checks)
    return table


def has_checks(loaded: LoadedExperiment) -> bool:
    config = loaded.config
    return bool(config.scorers or config.labels) or any(p.checks for p in loaded.prompts)


def score_record(
    record: CallRecord, checks: CaseChecks, guard: CheckGuard | None = None
) -> list[Score]:
    """The deterministic scores of one call; none for a failed call or a warmup. Each check
    runs under `guard` (one per run: guard.py), so that none can crash or hang the caller."""
    if not record.ok or record.warmup or record.completion is None:
        return []
    guard = guard or CheckGuard()
    text = record.completion.text
    scores = []
    for name, written in checks.checks:
        check = CHECKS.get(written.type)
        spec = with_reference(written, checks.expected)
        if check is None or spec is None:  # a judge is scored apart, through the provider layer
            continue
        # the guard counts the overruns of the check as written, whichever reference it read
        filled = functools.partial(_with_spec, check, spec)
        outcome, error = guard.run(written, filled, text, record, checks.expected)
        if error is not None:
            scores.append(Score(name, None, False, error, error=error))
            continue
        if outcome is None:
            continue
        value, passed, rationale = outcome
        if spec.negate:
            passed = not passed
            value = (not value) if isinstance(value, bool) else value
            rationale = f"not: {rationale}"
        scores.append(Score(name, value, passed, rationale))
    return scores


def score_records(
    records: Iterable[CallRecord],
    table: dict[str, CaseChecks],
    known: Mapping[CallKey, Sequence[Score]] | None = None,
) -> dict[CallKey, list[Score]]:
    """(case_id, repeat) -> scores, for every scored call of a variant; the calls in `known`
    (scored already, by the trace writer) are not scored again."""
    known = known or {}
    scores = {}
    guard = CheckGuard()
    for record in records:
        key = (record.case_id, record.repeat)
        checks = table.get(record.case_id)
        if checks is None:
            continue
        found = list(known[key]) if key in known else score_record(record, checks, guard)
        if found:
            scores[key] = found
    return scores


def _with_spec(check, spec: ScorerSpec, _written: ScorerSpec, *args):
    return check(spec, *args)


def check_types(table: dict[str, CaseChecks] | None) -> set[str]:
    """The types of every check in a case table (none without one)."""
    return {spec.type for case in (table or {}).values() for _, spec in case.checks}


def call_passed(scores: Sequence[Score]) -> bool | None:
    """All checks passed (and none errored); None for a call without any score."""
    return all(s.passed and s.error is None for s in scores) if scores else None


def quality_metrics(scores: dict[CallKey, list[Score]]) -> dict[str, float]:
    """pass_rate with its 95% interval (Wilson's, clustered by prompt:
    stats.clustered_rate_interval), n_scored, n_passed, n_score_errors and each score.<name>
    (the mean of its values, booleans as 0/1) over the scored calls."""
    if not scores:
        return {}
    outcomes = [call_passed(s) for s in scores.values()]
    n, passed = len(outcomes), sum(bool(o) for o in outcomes)
    metrics: dict[str, float] = {
        "n_scored": n,
        "n_passed": passed,
        "pass_rate": passed / n,
        "n_score_errors": sum(s.error is not None for ss in scores.values() for s in ss),
    }
    by_prompt: dict[str, list[bool]] = {}
    for (case_id, _), outcome in zip(scores, outcomes, strict=True):
        by_prompt.setdefault(case_id, []).append(bool(outcome))
    interval = clustered_rate_interval(by_prompt.values())
    if interval is not None:
        metrics["pass_rate_ci_low"], metrics["pass_rate_ci_high"] = interval
    values: dict[str, list[float]] = {}
    for call_scores in scores.values():
        for s in call_scores:
            if s.value is not None and s.error is None:
                values.setdefault(s.name, []).append(float(s.value))
    for name, found in sorted(values.items()):
        metrics[f"score.{name}"] = sum(found) / len(found)
    return {k: float(v) for k, v in metrics.items()}
