"""Each check runs guarded (scoring/guard.py): one that raises, recurses or runs past its limit
is a scorer error on that call, with its reason; the JSON limits (scoring/bounded_json.py)."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

from llmflow.scoring import CaseChecks, ScorerSpec, score_record
from llmflow.scoring.bounded_json import MAX_JSON_DEPTH, MAX_NUMBER_CHARS, loads, nesting_depth
from llmflow.scoring.guard import MAX_OVERRUNS, AnswerRefused, CheckGuard
from tests.helpers import call_record

NOT_EMPTY = ScorerSpec(type="not-empty")


def test_a_check_that_raises_is_an_error_with_its_reason():
    def broken(spec, text, record, expected):
        raise KeyError("surprise")

    assert CheckGuard().run(NOT_EMPTY, broken, "x", None, None) == (
        None,
        "not checked: KeyError: 'surprise'",
    )


def test_a_check_that_recurses_is_an_error():
    def deep(spec, text, record, expected):
        return deep(spec, text, record, expected)

    outcome, error = CheckGuard().run(NOT_EMPTY, deep, "x", None, None)
    assert outcome is None and error.startswith("not checked: RecursionError: maximum recursion")


def test_a_check_past_its_limit_is_stopped_and_then_no_longer_run():
    calls = []

    def spins(spec, text, record, expected):
        calls.append(1)
        while True:
            pass

    guard = CheckGuard(limit_s=0.2)
    start = time.monotonic()
    errors = [guard.run(NOT_EMPTY, spins, "x", None, None)[1] for _ in range(MAX_OVERRUNS + 2)]
    assert time.monotonic() - start < MAX_OVERRUNS * 0.2 + 1
    assert len(calls) == MAX_OVERRUNS
    assert errors[0] == "not checked: not-empty ran past its 0.2 s limit"
    assert errors[-1].endswith(f"limit on {MAX_OVERRUNS} calls of this run already")
    # another check of the same run still runs; the alarm is off and its handler restored
    other = ScorerSpec(type="length", max=3)
    assert guard.run(other, lambda *a: (1.0, True, "ok"), "x", None, None) == (
        (1.0, True, "ok"),
        None,
    )
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    assert signal.getsignal(signal.SIGALRM) is signal.SIG_DFL


def test_a_regex_is_bounded_outside_the_main_thread_too():
    spec = ScorerSpec(type="regex", value="^(a|a)+$")
    checks = CaseChecks(None, (("regex", spec),))
    found = []
    worker = threading.Thread(
        target=lambda: found.extend(score_record(call_record("v", 0.1, "a" * 40 + "!"), checks))
    )
    worker.start()
    worker.join(10)
    assert not worker.is_alive()
    (score,) = found
    assert score.error == "not checked: regex ran past its 1 s limit" and score.passed is False


def test_an_error_is_never_negated_into_a_pass():
    spec = ScorerSpec.model_validate({"type": "is-json", "not": True})
    (score,) = score_record(
        call_record("v", 0.1, "[" * 100 + "]" * 100), CaseChecks(None, (("j", spec),))
    )
    assert score.passed is False and score.value is None
    assert (
        score.error == f"not checked: JSON nested 100 levels deep (the limit is {MAX_JSON_DEPTH})"
    )


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ('[1, {"a": [2]}]', 3),
        ('["]]]]", "[[[[", "\\"[["]', 1),  # brackets inside strings, escaped quotes
        ('"unterminated [[[', 0),
        ("[" * 5000, 5000),
        ("", 0),
    ],
)
def test_nesting_depth_skips_strings(text: str, depth: int):
    assert nesting_depth(text) == depth


def test_json_within_the_limits_parses_as_python_does():
    document = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads(document) == json.loads(document)
    number = "9" * MAX_NUMBER_CHARS
    assert loads(f'{{"n": {number}, "x": 1.5}}') == {"n": int(number), "x": 1.5}


@pytest.mark.parametrize(
    "text",
    ["[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "1" * 5000, "[0." + "1" * 2000 + "]"],
)
def test_json_past_the_limits_is_refused_not_parsed(text: str):
    with pytest.raises(AnswerRefused):
        loads(text)


def test_nesting_depth_is_linear_on_quotes_and_backslashes():
    start = time.monotonic()
    nesting_depth('\\"' * 200_000)
    nesting_depth('["' * 100_000)
    assert time.monotonic() - start < 2
