"""The checks a case is scored with, as the file wrote them: a reference filled in, a prompt's
own checks named, each name unique (the schema of a check is config/scorers.py)."""

from __future__ import annotations

import re
from collections.abc import Collection

from ..config.scorers import (
    DEFAULT_JUDGE_THRESHOLD,
    DEFAULT_SIMILARITY_THRESHOLD,
    REFERENCE,
    SIMILARITY,
    TAKES_REFERENCE,
    ScorerSpec,
)

__all__ = [
    "DEFAULT_JUDGE_THRESHOLD",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "REFERENCE",
    "SIMILARITY",
    "ScorerSpec",
    "row_check_named",
    "unique_labels",
    "with_reference",
]


def with_reference(spec: ScorerSpec, expected: str | None) -> ScorerSpec | None:
    """The check with each `{expected}` in its value replaced by the prompt's reference (escaped
    in a regex); None when it needs a reference and the prompt has none (it does not apply, as
    rouge-l without one)."""
    values = [spec.value] if isinstance(spec.value, str) else spec.value or []
    if spec.type not in TAKES_REFERENCE or not any(REFERENCE in v for v in values):
        return spec
    if expected is None:
        return None
    fill = re.escape(expected) if spec.type == "regex" else expected
    filled = [v.replace(REFERENCE, fill) for v in values]
    return spec.model_copy(update={"value": filled[0] if isinstance(spec.value, str) else filled})


def row_check_named(prompt_id: str, spec: ScorerSpec) -> ScorerSpec:
    """A prompt's own check (`assert:`) without a `name:` is named after its prompt,
    `capital-fr.contains`: two prompts' checks of one type are different checks, which one
    mean (`score.contains`) would average together."""
    if spec.name is not None:
        return spec
    prefix = re.sub(r"[^\w.-]", "_", prompt_id)[: 99 - len(spec.type)]
    return spec.model_copy(update={"name": f"{prefix}.{spec.type}"})


def unique_labels(specs: list[ScorerSpec], taken: Collection[str] = ()) -> list[str]:
    """Each spec's label, unique among them and unlike every name in `taken`, by construction:
    explicit names are reserved first, so an auto-named check never ends up with a name given
    to another (`equals_2` named, then two unnamed `equals`: equals, equals_3); a later repeat
    of a name is suffixed _2, _3... with the first suffix no other check holds."""
    used = set(taken)
    reserved = {spec.name for spec in specs if spec.name is not None} - used
    labels = []
    for spec in specs:
        label = spec.label
        if label in used or (spec.name is None and label in reserved):
            n = 2
            while f"{label}_{n}" in used or f"{label}_{n}" in reserved:
                n += 1
            label = f"{label}_{n}"
        elif spec.name is not None:
            reserved.discard(label)
        used.add(label)
        labels.append(label)
    return labels
