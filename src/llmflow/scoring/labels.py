"""The `label` check of `task: classify`: an answer mapped to one of the labels, and compared
with the prompt's true label. Accuracy is this check's pass rate, with the same 95% interval as
`pass_rate`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from ..config.labels import UNPARSED, normalise
from ..config.scorers import ScorerSpec
from ..types import CallRecord

LABEL_CHECK = "label"


def to_label(answer: str, labels: Sequence[str]) -> str:
    """The label an answer means: an exact match after normalising, else the label named
    earliest in the answer (as a whole word), else `unparsed`. Two labels named at the same
    place ("billing" and "billing dispute" in "a billing dispute"): the longer, which the answer
    names in full. The order of `labels` never decides."""
    folded = normalise(answer)
    for label in labels:
        if normalise(label) == folded:
            return label
    first: tuple[int, int, str] | None = None  # (where, -length, label): the least wins
    for label in labels:
        wanted = normalise(label)
        found = _named(wanted).search(folded)
        if found and (first is None or (found.start(), -len(wanted)) < first[:2]):
            first = (found.start(), -len(wanted), label)
    return first[2] if first else UNPARSED


# scripts written without spaces between words: a label in them is found inside a sentence
_UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"
_SPACED_LETTER = rf"[\w--[{_UNSPACED}]]"


@functools.lru_cache(maxsize=256)
def _named(label: str) -> Any:
    """A normalised label as a whole word: not glued to a letter of a script that spaces its
    words ("accounts" is not "account"), but found within Chinese, Japanese or Thai text."""
    import regex

    def spaced(character: str) -> bool:
        return regex.fullmatch(_SPACED_LETTER, character, flags=regex.V1) is not None

    before = f"(?<!{_SPACED_LETTER})" if spaced(label[0]) else ""
    after = f"(?!{_SPACED_LETTER})" if spaced(label[-1]) else ""
    return regex.compile(before + regex.escape(label) + after, flags=regex.V1)


def label_check(
    spec: ScorerSpec, text: str, record: CallRecord, expected: str | None
) -> tuple[bool, bool, str] | None:
    """The `label` check: the answer's label equals the expected one."""
    if expected is None:
        return None
    predicted = to_label(text, list(spec.value or ()))
    ok = predicted == expected
    return ok, ok, f"predicted {predicted!r}, expected {expected!r}"


def label_spec(labels: Sequence[str]) -> ScorerSpec:
    """The label check every prompt of a classify task gets (accuracy is its pass rate)."""
    return ScorerSpec(type=LABEL_CHECK, name=LABEL_CHECK, value=list(labels))
