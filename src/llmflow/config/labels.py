"""`task: classify` in the experiment file: what a `labels:` list may hold, how a label is
spelt, and the instruction an LLM gets when a prompt has no system message of its own."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ..errors import ConfigError
from ..user_files import shorten

TASK = "classify"
UNPARSED = "unparsed"
_EDGES = " \t\r\n\"'`*_.:;,!?()[]{}<>"


def instruction(labels: Sequence[str]) -> str:
    """The system message of a classify task's prompts that have none of their own (the file's
    `system:` replaces it). Neutral: it names no domain, so sentiment, topics or tickets alike
    read naturally."""
    return (
        "Classify the text into exactly one of these labels: "
        f"{', '.join(labels)}. Answer with the label only."
    )


def labels_problem(labels: Sequence[str]) -> str | None:
    """What is wrong with a `labels:` list; None when it is fine."""
    if len(labels) < 2:
        return "task classify needs a list of two or more labels"
    seen: set[str] = set()
    for label in labels:
        folded = normalise(label)
        if not folded or folded == UNPARSED:
            return f"{shorten(label)} cannot be a label"
        if folded in seen:
            return f"{shorten(label)} appears twice"
        seen.add(folded)
    return None


def normalise(text: str) -> str:
    """Caseless, canonically composed (an NFD "café" is the NFC one), trimmed of quotes and
    markup, single-spaced."""
    caseless = unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())
    return " ".join(caseless.strip(_EDGES).split())


def canonical(value: str | None, labels: Sequence[str], where: str) -> str:
    """The label as `labels:` spells it; ConfigError naming `where` when it is not one."""
    if value is None:
        raise ConfigError(f"{where}: is required for task classify (the true label)")
    for label in labels:
        if normalise(label) == normalise(value):
            return label
    raise ConfigError(f"{where}: {shorten(value)} is not one of labels ({', '.join(labels)})")
