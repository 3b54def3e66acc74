"""After a run: register the variants asked for, then apply the file's promotion policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import LoadedExperiment
from ..errors import PromotionRefused
from ..plan import Plan
from ..redact import redact_text

if TYPE_CHECKING:
    from ..report import Comparison


@dataclass
class Registration:
    """What registration did after a run, one line each."""

    registered: list[str] = field(default_factory=list)  # "name v3 (variant)"
    problems: list[str] = field(default_factory=list)  # what could not be registered or promoted


def register_and_promote(
    client: Any,
    loaded: LoadedExperiment,
    plan: Plan,
    register_all: bool,
    comparison: Comparison | None,
) -> Registration:
    """Register the variants asked for, then apply the promotion policy. Never raises: the run
    is already safe, so each failure is a line in `problems`."""
    from . import versions

    result = Registration()
    if comparison is None:
        return result
    policy = loaded.config.promote
    rules = policy.require if policy else []
    wanted = {v.id for v in plan.variants if v.entry.register_as or register_all}
    registered = []
    for row in comparison.rows:
        if row.variant_id not in wanted or row.skipped or row.n_calls == row.n_errors:
            continue
        try:
            mv = versions.register_run(client, row.run_id, gates_from_file=rules)
        except Exception as e:  # anything: the run is recorded already, and the rest may register
            problem = redact_text(f"{type(e).__name__}: {e}")
            result.problems.append(f"could not register {row.variant_id}: {problem}")
            continue
        registered.append(mv)
        result.registered.append(f"{mv.name} v{mv.version} ({row.variant_id})")
    if policy and policy.best_by and registered:
        _promote_best(client, registered, policy.best_by, result)
    return result


def _promote_best(client: Any, registered: list[Any], metric: str, result: Registration) -> None:
    from . import versions

    scored = [(versions.recorded_metrics(mv).get(metric), mv) for mv in registered]
    scored = [(value, mv) for value, mv in scored if value is not None]
    if not scored:
        result.problems.append(f"promote.best_by: no registered variant recorded {metric}")
        return
    from ..metrics import higher_is_better

    pick = max if higher_is_better(metric) else min
    _, best = pick(scored, key=lambda pair: pair[0])
    try:
        versions.promote(client, best.name, best.version, "staging")
        result.registered.append(f"{best.name} v{best.version} promoted to staging (best {metric})")
    except Exception as e:  # a refusal or a store error: the run and the versions are safe
        problem = str(e) if isinstance(e, PromotionRefused) else redact_text(repr(e))
        result.problems.append(f"{best.name} v{best.version} not promoted: {problem}")
