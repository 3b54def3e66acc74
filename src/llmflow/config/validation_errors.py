"""A pydantic ValidationError of an experiment file, said in one line a user can act on: the
field's path as written in the file, what is wrong, and the closest known field for a typo."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from ..user_files import clip

# a pydantic error's location -> the fields of the model there (schema.known_fields)
KnownFields = Callable[[tuple[Any, ...]], Sequence[str]]


def _none_known(loc: tuple[Any, ...]) -> Sequence[str]:
    return ()


def describe_validation_error(
    error: ValidationError, leading_dot: bool = False, known_fields: KnownFields = _none_known
) -> str:
    """One line: the field's path and what is wrong with it (a value echoed is cut short).
    `known_fields` names the fields at a location, for a typo's "did you mean" and to fold a
    model-level message's field into the path."""
    detail = error.errors()[0]
    loc = _format_loc(detail["loc"])
    message = _friendly_message(detail, known_fields)
    # a model-level check names its field first ("model: is required"); fold it into the path
    field, sep, rest = message.partition(": ")
    if sep and field.isidentifier() and field in known_fields(detail["loc"]):
        loc, message = (f"{loc}.{field}" if loc else field), rest
    message = clip(message)
    if not loc:
        return (" " if leading_dot else "") + message
    return f"{'.' if leading_dot else ''}{loc}: {message}"


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        # pydantic adds the union member's type name to the location; it means nothing to users
        if isinstance(part, str) and ("[" in part or part in ("str", "list", "function-after")):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            part = clip(str(part), 40)  # an unknown key is the user's text, of any length
            out += f".{part}" if out else part
    return out


def _friendly_message(detail: dict[str, Any], known_fields: KnownFields) -> str:
    kind = detail["type"]
    # a pydantic dataclass (PromptCase) says missing_argument and unexpected_keyword_argument
    if kind in ("missing", "missing_argument"):
        return "is required"
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        field = str(detail["loc"][-1])[:100]
        known = list(known_fields(detail["loc"]))
        return f"unknown field{did_you_mean(field, known)}"
    if kind == "finite_number":
        return f"must be a finite number (got {detail['input']})"
    message = str(detail["msg"])
    return message.removeprefix("Value error, ")


def did_you_mean(word: str, known: list[str], quoted: bool = False) -> str:
    """` (did you mean NAME?)` for the known name closest to a mistyped one; else nothing."""
    close = difflib.get_close_matches(word, known, n=1)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if quoted else f" (did you mean {close[0]}?)"
