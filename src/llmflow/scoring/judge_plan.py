"""The judge checks of a plan, before any call: who judges which case, with which prompt, for
the budget's worst case and for checking each judge before the run starts."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import LoadedExperiment
from ..plan import Case, Variant, settings_of, sized_cases
from ..types import Message
from .judge import prompt_text


@dataclass(frozen=True)
class JudgeCheck:
    """A judge check of one case, for the budget's worst case: every measured call of the case
    is graded by one call to the judge, whose prompt holds the case's question, its reference
    and the answer."""

    where: str  # where the file says it: scorers[1] or prompts[0].assert[2]
    judge: Variant
    case: Case  # the judge's prompt for this case, without the answer


def judge_checks(experiment: LoadedExperiment) -> list[JudgeCheck]:
    """Every judge check of every case of the plan (prompt_sizes included)."""
    scorers = list(experiment.config.scorers or ())
    judges: dict[str, Variant] = {}
    checks = []
    for j, prompt in enumerate(experiment.prompts):
        located = [(f"scorers[{i}]", spec) for i, spec in enumerate(scorers)]
        located += [(f"prompts[{j}].assert[{k}]", spec) for k, spec in enumerate(prompt.checks)]
        for where, spec in located:
            if spec.type != "judge":
                continue
            if where not in judges:
                entry = spec.judge_entry()
                judges[where] = Variant(f"judge:{spec.label}", entry, settings_of(entry))
            for case in sized_cases(prompt, experiment.config.prompt_sizes):
                text = prompt_text(spec, case.messages, prompt.expected, answer="")
                judged = Case(case.id, (Message("user", text),))
                checks.append(JudgeCheck(where, judges[where], judged))
    return checks
