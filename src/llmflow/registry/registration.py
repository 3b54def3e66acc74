"""After a run: register the variants asked for, then apply the file's promotion policy.

A rerun with unchanged settings adds no version: a variant whose configuration (the model
entry it serves, its system prompt, a trained model's training data) is that of a version of
its registered model already keeps the newest such version, and one line says so (a sweep
registered under one name keeps one version per setting). The registry then grows only when
what would be served changes; the metrics a version records stay those of the run it was
registered from (`llmflow register --run` adds a version of a run anyway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import LoadedExperiment
from ..plan import Plan
from ..redact import redact_text
from ..tracking.schema import PROMPT_ERROR_TAG, SOURCE_RUN_TAG

if TYPE_CHECKING:
    from ..report import Comparison
    from .policy import Candidate


@dataclass
class Registration:
    """What registration did after a run, one line each."""

    registered: list[str] = field(default_factory=list)  # "name v3 (variant)"
    notes: list[str] = field(default_factory=list)  # versions kept, aliases moved or left, ties
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
    from .policy import promote_best

    result = Registration()
    if comparison is None:
        return result
    policy = loaded.config.promote
    rules = policy.require if policy else []
    wanted = {v.id for v in plan.variants if v.entry.register_as or register_all}
    candidates = []
    for row in comparison.rows:
        if row.variant_id not in wanted or row.skipped or row.n_calls == row.n_errors:
            continue
        try:
            candidates.append(_register(client, row.run_id, row.variant_id, rules, result))
        except Exception as e:  # anything: the run is recorded already, and the rest may register
            problem = redact_text(f"{type(e).__name__}: {e}")
            result.problems.append(f"could not register {row.variant_id}: {problem}")
    if policy and policy.best_by and candidates:
        notes, problems = promote_best(client, candidates, policy.best_by, rules)
        result.notes += notes
        result.problems += problems
    return result


def _register(
    client: Any, run_id: str, variant_id: str, rules: list[str], result: Registration
) -> Candidate:
    """A new version of the variant run, or the newest version of the same configuration."""
    from . import versions
    from .lookups import versions_of
    from .policy import Candidate

    run, saved, name = versions.registration_target(client, run_id)
    fingerprint = versions.config_fingerprint(saved, run.data.params)
    same = [
        mv
        for mv in versions_of(client, name)
        if mv.tags.get(versions.FINGERPRINT_TAG) == fingerprint
    ]
    if same:
        mv = max(same, key=lambda found: int(found.version))
        source = mv.tags.get(SOURCE_RUN_TAG, "")
        result.notes.append(
            f"kept {name} v{mv.version} for {variant_id}: its settings are unchanged since "
            f"run {source[:8]} registered it (llmflow register --run {run_id[:8]} adds a "
            "version anyway)"
        )
    else:
        mv = versions.register_run(client, run_id, name, gates_from_file=rules)
        result.registered.append(f"{mv.name} v{mv.version} ({variant_id})")
        if reason := mv.tags.get(PROMPT_ERROR_TAG):
            result.problems.append(
                f"{mv.name} v{mv.version}: its prompt was not registered: {reason}"
            )
    return Candidate(mv, variant_id, dict(run.data.metrics))
