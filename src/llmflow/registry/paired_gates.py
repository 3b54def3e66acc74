"""Promotion gates against the current holder of an alias, on the same prompts: the candidate's
variant run and the holder's are paired on the prompts both answered, and the rule tests a
one-sided 95% bound of the difference (report/pairs.one_sided_bound)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..report.pairs import evidence, one_sided_bound
from ..report.pairs_text import diff_text
from ..tracking.read import call_rows
from .gates import PairedGate
from .lookups import alias_holder, version_of


def check(
    client: Any, name: str, candidate: Any, rules: list[PairedGate]
) -> tuple[list[str], list[str]]:
    """(passed, failures) of the paired gates for version `candidate` of model `name`."""
    passed, failures = [], []
    for gate in rules:
        reason, shown = _check(client, name, candidate, gate)
        if reason is None:
            passed.append(shown)
        else:
            failures.append(reason)
    return passed, failures


def _check(client: Any, name: str, candidate: Any, gate: PairedGate) -> tuple[str | None, str]:
    version = str(candidate.version)
    holder = alias_holder(client, name, gate.alias)
    if holder is None:
        return f"{gate}: no version of {name} holds @{gate.alias} to compare with", ""
    held = version_of(client, name, holder)
    metric = gate.compared
    classify = metric == "accuracy"
    mine = evidence(f"v{version}", _rows(client, candidate.run_id), classification=classify)
    theirs = evidence(f"v{holder}", _rows(client, held.run_id), classification=classify)
    bound, n = one_sided_bound(metric, mine, theirs, lower=gate.lower_bound)
    if bound is None:
        what = "no prompt in common" if n == 0 else f"only {n} prompt(s) in common"
        return (
            f"{gate}: v{version} and v{holder} (@{gate.alias}) answered {what} with a "
            f"{gate.metric} to compare: nothing can be concluded",
            "",
        )
    side = "lower" if gate.lower_bound else "upper"
    found = (
        f"the one-sided 95% {side} bound of v{version} - v{holder} (@{gate.alias}) on "
        f"{n} prompts both answered is {diff_text(metric, bound)}"
    )
    if gate.holds(bound):
        return None, f"{gate} ({found})"
    return f"{gate}: {found}, not {gate.op} {diff_text(metric, gate.margin)}", ""


def _rows(client: Any, run_id: str | None) -> Iterable[dict[str, Any]]:
    return call_rows(client, run_id) if run_id else ()
