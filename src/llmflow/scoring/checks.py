"""The deterministic checks: pure functions of an answer (and its call and reference).

Each returns (value, passed, rationale) before any `not:`; None when it does not apply to the
call (a similarity check on a prompt without `expected`). Similarity: ROUGE-L F1 as rouge-score
computes it (rouge.py) and sacrebleu's chrF (divided by 100). Each runs guarded (guard.py).

Regular expressions use the `regex` module, not `re`: its timeout bounds a match that
backtracks catastrophically (`^(a|a)+$` on forty a's and a `!`), from any thread, and with
`concurrent=True` it lets go of the GIL meanwhile, so the trace writer's other threads carry on.
It reads `re`'s syntax (lookarounds and backreferences too), so every pattern that worked still
does. An engine without backtracking (google-re2) was not chosen: it refuses lookarounds and
backreferences, which existing patterns may hold.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

from ..config.json_schemas import validator
from ..types import CallRecord
from .bounded_json import loads
from .guard import CHECK_LIMIT_S
from .labels import label_check
from .rouge import rouge_l_f1
from .specs import DEFAULT_SIMILARITY_THRESHOLD, ScorerSpec

Outcome = tuple[float | bool, bool, str]
Check = Callable[[ScorerSpec, str, CallRecord, "str | None"], "Outcome | None"]


def _fold(text: str, spec: ScorerSpec) -> str:
    return text if spec.case_sensitive else text.casefold()


def equals(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    ok = _fold(text.strip(), spec) == _fold(str(spec.value).strip(), spec)
    return ok, ok, f"answer {'equals' if ok else 'differs from'} {spec.value!r}"


def contains(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    ok = str(spec.value) in text
    return ok, ok, f"{spec.value!r} {'found' if ok else 'not found'}"


def icontains(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    ok = str(spec.value).casefold() in text.casefold()
    return ok, ok, f"{spec.value!r} {'found' if ok else 'not found'} (ignoring case)"


def contains_any(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    found = [v for v in spec.value or () if _fold(v, spec) in _fold(text, spec)]
    ok = bool(found)
    return ok, ok, f"found {found!r}" if found else "none of the values found"


def contains_all(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    missing = [v for v in spec.value or () if _fold(v, spec) not in _fold(text, spec)]
    ok = not missing
    return ok, ok, "all values found" if ok else f"missing {missing!r}"


def regex(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    found = _compiled(str(spec.value)).search(text, timeout=CHECK_LIMIT_S, concurrent=True)
    ok = found is not None
    return ok, ok, f"/{spec.value}/ {'matches' if ok else 'does not match'}"


@functools.lru_cache(maxsize=256)
def _compiled(pattern: str) -> Any:
    return _regex_engine().compile(pattern)


@functools.cache
def _regex_engine() -> Any:
    import regex as engine

    return engine


def not_empty(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    ok = bool(text.strip())
    return ok, ok, "answer is not blank" if ok else "answer is blank"


def is_json(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    """Parsed within limits (bounded_json); the schema was resolved when the file was read."""
    try:
        document = loads(text)
    except json.JSONDecodeError as e:
        return False, False, f"not JSON: {e.msg} at character {e.pos}"
    if spec.json_schema is None:
        return True, True, "valid JSON"
    import jsonschema

    error = jsonschema.exceptions.best_match(validator(spec.json_schema).iter_errors(document))
    if error is not None:
        return False, False, f"JSON does not match the schema: {error.message[:200]}"
    return True, True, "valid JSON matching the schema"


def length(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    n = len(text)
    ok = (spec.min is None or n >= spec.min) and (spec.max is None or n <= spec.max)
    return float(n), ok, f"{n} characters (min {spec.min}, max {spec.max})"


def latency(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    if record.timing is None or record.cached:
        return None  # a cached answer has no latency of its own
    value = record.timing.latency_s
    ok = value <= float(spec.threshold or 0)
    return value, ok, f"latency {value:.3f} s (limit {spec.threshold:g} s)"


def cost(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    if record.cost is None or record.cost.usd is None:
        return None  # unpriced: unknown is never 0
    value = record.cost.usd
    ok = value <= float(spec.threshold or 0)
    return value, ok, f"cost ${value:.6f} (limit ${spec.threshold:g})"


def rouge_l(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    if expected is None:
        return None
    value = rouge_l_f1(expected, text)
    return _similarity(spec, value, "ROUGE-L F1")


def chrf(spec: ScorerSpec, text: str, record: CallRecord, expected: str | None) -> Outcome:
    if expected is None:
        return None
    value = _chrf().sentence_score(text, [expected]).score / 100.0
    return _similarity(spec, value, "chrF")


def _similarity(spec: ScorerSpec, value: float, what: str) -> Outcome:
    threshold = spec.threshold if spec.threshold is not None else DEFAULT_SIMILARITY_THRESHOLD
    ok = value >= threshold
    return value, ok, f"{what} {value:.3f} against the expected answer (threshold {threshold:g})"


@functools.cache
def _chrf() -> Any:
    from sacrebleu.metrics import CHRF

    return CHRF()


CHECKS: dict[str, Check] = {
    "equals": equals,
    "contains": contains,
    "icontains": icontains,
    "contains-any": contains_any,
    "contains-all": contains_all,
    "regex": regex,
    "not-empty": not_empty,
    "is-json": is_json,
    "length": length,
    "latency": latency,
    "cost": cost,
    "rouge-l": rouge_l,
    "chrf": chrf,
    "label": label_check,
}


def _jsonschema() -> None:
    import jsonschema  # noqa: F401 - 0.1 s, not to be counted against the first call's limit


# the libraries behind some checks, loaded before the first answer (sacrebleu: 0.3 s), so that
# no check's time limit pays for an import
_LIBRARIES: dict[str, Callable[[], Any]] = {
    "chrf": _chrf,
    "regex": _regex_engine,
    "is-json": _jsonschema,
}


def load_libraries(check_types: Iterable[str]) -> None:
    """Load the libraries that checks of these types score with, before the first answer
    needs them."""
    for kind in sorted(set(check_types)):
        if (load := _LIBRARIES.get(kind)) is not None:
            load()
