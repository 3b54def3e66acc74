"""Scores as columns of a variant's calls.json: one per check, and `passed`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..types import CallRecord
from .scores import CallKey, Score, call_passed


def add_score_columns(
    columns: dict[str, list[Any]],
    records: Iterable[CallRecord],
    scores: dict[CallKey, list[Score]],
) -> None:
    """Append, in the records' order, a column per check name (its value; empty where the check
    did not apply or could not be made) and `passed` (empty for a failed or unchecked call).
    A check named like a column already there (a check called `case`) gets `score.` before it."""
    names = sorted({s.name for found in scores.values() for s in found})
    shown = {n: f"score.{n}" if n in columns or n == "passed" else n for n in names}
    added: dict[str, list[Any]] = {shown[name]: [] for name in names}
    added["passed"] = []
    for record in records:
        found = scores.get((record.case_id, record.repeat), [])
        by_name = {s.name: s for s in found}
        for name in names:
            score = by_name.get(name)
            added[shown[name]].append(None if score is None or score.error else score.value)
        added["passed"].append(call_passed(found))
    columns.update(added)
