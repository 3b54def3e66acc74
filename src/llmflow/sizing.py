"""`llmflow plan`: before paying for a run, how many prompts would tell its variants apart.

The answer depends on how often two variants disagree on a prompt (one passes, the other
fails): the more they disagree, the more prompts a given difference of pass rates needs. That
share is assumed, or read from an earlier run's pairwise verdicts.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from . import power
from .config import MlflowSources, load_experiment
from .errors import ConfigError
from .plan import build_plan

DEFAULT_DISCORDANCE = 0.2  # a fifth of the prompts: correlated models, as real ones are


@dataclass(frozen=True)
class Sizing:
    file: str
    variants: int
    prompts: int
    repeats: int
    calls: int
    pairs: int  # comparisons of one metric: Holm corrects over these
    detect: float  # the difference of pass rates to detect
    discordance: float  # share of prompts on which two variants disagree
    discordance_from: str  # "assumed", or the run it was observed in
    prompts_needed: int | None  # None: no share of disagreement this small allows it
    alpha: float


def size(
    experiment_file: Path,
    detect: float,
    discordance: float | None = None,
    observed: tuple[str, list[float]] | None = None,
    sources: MlflowSources | None = None,
) -> Sizing:
    """The prompts needed to detect `detect` (a difference of pass rates, 0.05 = 5 points)
    between any two variants of the file, at 80% power and 5% after Holm's correction for all
    the pairs. `observed` is (where, the discordance of each pair of an earlier run)."""
    if not 0 < detect < 1:
        raise ConfigError(f"--detect {detect}: give a difference of pass rates in (0, 1)")
    plan = build_plan(load_experiment(experiment_file, sources=sources))
    n = len(plan.variants)
    if n < 2:
        raise ConfigError(
            f"{experiment_file.name} has {n} variant: at least two are needed to compare"
        )
    pairs = n * (n - 1) // 2
    where = "assumed"
    if observed is not None:
        where, shares = observed
        discordance = statistics.median(shares)
    elif discordance is None:
        discordance = DEFAULT_DISCORDANCE
    alpha = power.ALPHA / pairs
    return Sizing(
        file=experiment_file.name,
        variants=n,
        prompts=len(plan.cases),
        repeats=plan.repeats,
        calls=plan.n_calls,
        pairs=pairs,
        detect=detect,
        discordance=discordance,
        discordance_from=where,
        prompts_needed=power.mcnemar_prompts(detect, discordance, alpha),
        alpha=alpha,
    )


def describe(s: Sizing) -> list[str]:
    lines = [
        f"{s.file}: {s.variants} variant(s) x {s.prompts} prompt(s) x {s.repeats} repeat(s) = "
        f"{s.calls:,} calls; {s.pairs} pair(s) of variants to compare",
    ]
    source = (
        "assumed: set --discordance, or --from EXPERIMENT to read an earlier run's"
        if s.discordance_from == "assumed"
        else f"observed in {s.discordance_from}"
    )
    lines.append(
        f"To detect a {s.detect * 100:.1f}-point difference in pass rate between two variants "
        f"(80% power, level {s.alpha:.2g}: 5% after Holm's correction for {s.pairs} pair(s)), "
        f"when they disagree on {s.discordance:.0%} of the prompts ({source}):"
    )
    if s.prompts_needed is None:
        lines.append(
            f"  not possible: two variants that disagree on {s.discordance:.0%} of the prompts "
            f"cannot differ by {s.detect * 100:.1f} points in pass rate"
        )
        return lines
    verdict = "enough" if s.prompts >= s.prompts_needed else "too few"
    lines.append(f"  about {s.prompts_needed:,} prompts; the file has {s.prompts:,} ({verdict}).")
    lines.append(
        "Repeats do not replace prompts: a prompt's repeats are one observation, and at "
        "temperature 0 they add nothing."
    )
    return lines
