"""Each deterministic check runs guarded: an answer is untrusted input, and no answer may crash,
hang or corrupt the run that scores it (in the trace writer's process, or `llmflow score`).

- Time: CHECK_LIMIT_S (1 s) per check and call. The `regex` check bounds its own match (the
  `regex` engine's timeout); every other check is interrupted by SIGALRM when it runs past the
  limit, which works in the main thread of a POSIX process (the trace writer scores there) and
  interrupts `re` and jsonschema too. Elsewhere only the regex bound applies.
- Memory: every check is linear in the answer (ROUGE-L keeps one row of its table; JSON is
  refused past MAX_JSON_DEPTH levels or a number of MAX_NUMBER_CHARS characters: bounded_json).
- A check that raises (RecursionError, MemoryError, anything) or runs past its limit gives a
  Score with `error` set, its reason in one line: never a passed check, never a dead writer.
- A check that ran past its limit on MAX_OVERRUNS calls is not run again in that run: each
  later call gets an error score at once. So a thousand hostile answers cost seconds, not a
  thousand of them, and a run that is told to stop still stops.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..redact import one_line

if TYPE_CHECKING:
    from .specs import ScorerSpec

CHECK_LIMIT_S = 1.0
MAX_OVERRUNS = 3

Outcome = tuple[float | bool, bool, str]


class CheckOverran(TimeoutError):
    """A check ran past CHECK_LIMIT_S (raised by the alarm, or by the regex engine)."""


class AnswerRefused(ValueError):
    """The answer is past a limit that keeps a check bounded (too deep, too long a number)."""


class CheckGuard:
    """Runs the checks of one run; remembers the checks that ran past their limit."""

    def __init__(self, limit_s: float = CHECK_LIMIT_S) -> None:
        self.limit_s = limit_s
        self._overruns: list[list[Any]] = []  # [spec, count]: specs are compared, not hashed

    def run(
        self, spec: ScorerSpec, check: Callable[..., Outcome | None], *args: Any
    ) -> tuple[Outcome | None, str | None]:
        """(the check's outcome, None), or (None, why it could not be made)."""
        tripped = self._count(spec)
        if tripped is not None and tripped[1] >= MAX_OVERRUNS:
            return None, (
                f"not checked: {spec.type} ran past its {self.limit_s:g} s limit on "
                f"{MAX_OVERRUNS} calls of this run already"
            )
        try:
            with _deadline(self.limit_s):
                return check(spec, *args), None
        except TimeoutError:  # CheckOverran, or the regex engine's own
            self._overran(spec)
            return None, f"not checked: {spec.type} ran past its {self.limit_s:g} s limit"
        except AnswerRefused as e:
            return None, f"not checked: {one_line(str(e))}"
        except Exception as e:  # noqa: BLE001 - RecursionError, MemoryError, a library's bug
            return None, f"not checked: {one_line(e)}"

    def _count(self, spec: ScorerSpec) -> list[Any] | None:
        return next((entry for entry in self._overruns if entry[0] == spec), None)

    def _overran(self, spec: ScorerSpec) -> None:
        entry = self._count(spec)
        if entry is None:
            self._overruns.append([spec, 1])
        else:
            entry[1] += 1


_armed = False  # the alarm raises only while a check runs


def _overran(signum: int, frame: object) -> None:
    if _armed:
        raise CheckOverran


def _alarm_usable() -> bool:
    """SIGALRM is ours to use: POSIX, the main thread, and no timer of someone else's running
    (pytest-timeout, a caller's own alarm)."""
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    )


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """CheckOverran in the body once `seconds` have passed (where the alarm is usable)."""
    global _armed
    if not _alarm_usable():
        yield
        return
    previous = signal.signal(signal.SIGALRM, _overran)
    _armed = True
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        try:  # the alarm may fire in here too: the handler is restored whatever happens
            _armed = False
            signal.setitimer(signal.ITIMER_REAL, 0)
        finally:
            signal.signal(signal.SIGALRM, previous)
