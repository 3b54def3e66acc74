"""A run's `promote: {best_by: ...}` policy: which registered variant goes to staging, and when
it may not.

- The best value of `best_by` in this run wins (its direction: pass rate up, latency down).
  A tie is said, with the rule that broke it: the other headline metrics in turn (pass rate
  or accuracy up, then median latency, then cost down), then the order of the file.
- The policy moves `staging` only where a run's policy set it (or nobody did). An alias a
  person set with `llmflow promote` (or in MLflow itself) stays: one line says so and gives
  the command that moves it.
- Every move is said, from which version to which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import PromotionRefused
from ..metrics import higher_is_better
from ..redact import redact_text
from .lookups import alias_holder, version_of

TIE_BREAKS = ("pass_rate", "accuracy", "latency_p50_s", "estimated_cost_usd")
ALIAS = "staging"


@dataclass(frozen=True)
class Candidate:
    """A version registered (or kept) for a variant of this run, with the run's metrics."""

    mv: Any
    variant_id: str
    metrics: dict[str, float]

    @property
    def label(self) -> str:
        return f"{self.mv.name} v{self.mv.version} ({self.variant_id})"


def promote_best(
    client: Any, candidates: list[Candidate], metric: str, rules: list[str] = ()
) -> tuple[list, list]:
    """Send the best candidate to staging where the policy may; (notes, problems), one line
    each. The file's gates (`rules`) are checked against this run's metrics first: a version
    kept from an earlier run is never promoted under that run's gates and numbers. Never
    raises: the run and its versions are safe already."""
    try:
        return _promote_best(client, candidates, metric, list(rules))
    except Exception as e:  # a store error, a hand-written tag: the run is safe already
        return [], [f"promote.best_by: not applied: {redact_text(repr(e))}"]


def _promote_best(
    client: Any, candidates: list[Candidate], metric: str, rules: list[str]
) -> tuple[list, list]:
    from . import gates, versions

    scored = [c for c in candidates if c.metrics.get(metric) is not None]
    if not scored:
        return [], [f"promote.best_by: no registered variant recorded {metric}"]
    best, tie = _best(scored, metric)
    notes = [tie] if tie else []
    name, version = best.mv.name, str(best.mv.version)
    holder = alias_holder(client, name, ALIAS)
    value = f"best {metric} {best.metrics[metric]:.4g}"
    if holder == version:
        return [*notes, f"{name} {ALIAS} stays v{version} ({value})"], []
    if holder is not None and (setter := _set_by_hand(client, name, holder)) is not None:
        return [
            *notes,
            f"{name} {ALIAS} stays v{holder} ({setter}): a run's promote: policy leaves an alias "
            f"set by hand; `llmflow promote {name} -v {version} --to {ALIAS}` moves it ({value})",
        ], []
    _, failures = gates.check(rules, best.metrics)
    if failures:
        return notes, [f"{name} v{version} not promoted: {'; '.join(failures)}"]
    try:
        versions.promote(client, name, version, ALIAS, via=versions.BY_POLICY)
    except Exception as e:  # a refusal or a store error: the run and the versions are safe
        problem = str(e) if isinstance(e, PromotionRefused) else redact_text(repr(e))
        return notes, [f"{name} v{version} not promoted: {problem}"]
    moved = f"v{holder} -> v{version}" if holder else f"v{version}"
    return [*notes, f"{name} {ALIAS}: {moved} ({value}, {best.variant_id})"], []


def _best(scored: list[Candidate], metric: str) -> tuple[Candidate, str | None]:
    """The winner, and the line that says the tie it came out of (None: no tie)."""
    sign = -1 if higher_is_better(metric) else 1
    top = min(sign * c.metrics[metric] for c in scored)
    tied = [c for c in scored if sign * c.metrics[metric] == top]  # in the file's order
    if len(tied) == 1:
        return tied[0], None
    breaks = [m for m in TIE_BREAKS if m != metric]
    winner = min(tied, key=lambda c: [_rank(c, m) for m in breaks] + [tied.index(c)])
    rule = ", then ".join(f"{'higher' if higher_is_better(m) else 'lower'} {m}" for m in breaks)
    names = ", ".join(c.label for c in tied)
    return winner, (
        f"promote.best_by: {len(tied)} variants tie on {metric} = {abs(top):.4g} ({names}); "
        f"the tie is broken by {rule}, then the order of the file: {winner.label}"
    )


def _rank(candidate: Candidate, metric: str) -> tuple[int, float]:
    value = candidate.metrics.get(metric)
    if value is None:
        return (1, 0.0)  # unknown ranks last
    return (0, -value if higher_is_better(metric) else value)


def _set_by_hand(client: Any, name: str, version: str) -> str | None:
    """Who set the alias on this version, when not a run's policy: "set by X on DATE" (with
    llmflow promote, when the record says so: older ones do not), or "set outside llmflow"
    when no promotion of llmflow's says so."""
    from .versions import BY_HAND, BY_POLICY, PROMOTION_PREFIX

    tags = version_of(client, name, version).tags
    records = sorted(
        (
            (int(k.removeprefix(PROMOTION_PREFIX)), json.loads(v))
            for k, v in tags.items()
            if k.startswith(PROMOTION_PREFIX)
        ),
        key=lambda pair: pair[0],
    )
    setting = [r for _, r in records if r.get("to") == ALIAS]
    if not setting:
        return "set outside llmflow"
    last = setting[-1]
    if last.get("via") == BY_POLICY:
        return None
    how = f" with {BY_HAND}" if last.get("via") == BY_HAND else ""
    return f"set by {last.get('by', 'someone')} on {last.get('at', '?')}{how}"
