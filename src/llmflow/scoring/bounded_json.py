"""JSON answers parsed within limits: an answer of a thousand nested brackets makes Python's
parser (and then jsonschema, about 6 frames a level) raise RecursionError, and a number of
thousands of digits makes int() raise ValueError. Both are refused before they are parsed.

RFC 8259 (section 9) lets a parser set limits on nesting depth and on numbers.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .guard import AnswerRefused

MAX_JSON_DEPTH = 64  # arrays and objects within each other; jsonschema needs ~6 frames each
MAX_NUMBER_CHARS = 1000  # one number's characters (Python's int() refuses past 4,300 digits)
# a string (an unterminated one runs to the end, so every match moves on: linear), or a bracket
# (the group: a string is found as "", never copied)
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|([\[\]{}])', re.DOTALL)
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def nesting_depth(text: str) -> int:
    """The deepest nesting of brackets outside strings (of malformed JSON too)."""
    depth = deepest = 0
    for token in _TOKENS.findall(text):
        depth += _STEP.get(token, 0)
        deepest = max(deepest, depth)
    return deepest


def _number(convert: type) -> Any:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise AnswerRefused(
                f"a JSON number of {len(text):,} characters (the limit is {MAX_NUMBER_CHARS:,})"
            )
        return convert(text)

    return parse


_parse_int, _parse_float = _number(int), _number(float)


def loads(text: str) -> Any:
    """The document; json.JSONDecodeError when it is not JSON, AnswerRefused past a limit."""
    depth = nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise AnswerRefused(f"JSON nested {depth:,} levels deep (the limit is {MAX_JSON_DEPTH})")
    return json.loads(text, parse_int=_parse_int, parse_float=_parse_float)
