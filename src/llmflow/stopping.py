"""Ctrl-C, SIGTERM and SIGHUP during `llmflow run`: stop sending, finish the runs, then exit.

The first signal cancels the calls in flight (never the cleanup that follows them), so the runs
are written with every finished call and ended as KILLED. While the cleanup runs, a second
signal says what is being waited for; a third abandons the waiting: the runs are still marked
KILLED, and `--resume` writes whatever was left (the journal holds every finished call).

A signal that the process inherited as ignored (a job started with `&` by a non-interactive
shell ignores SIGINT; `nohup` ignores SIGHUP) stays ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

from .redact import one_line

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class StopSignals:
    """Installs the handlers on the running loop for the duration of a `with` block."""

    def __init__(self, on_abandon: Callable[[], None]) -> None:
        self.received: str | None = None  # the name of the first stop signal
        self._warned = False
        self._cancel: Callable[[], object] | None = None
        self._waiting_for = "the runs to be written"
        self._on_abandon = on_abandon
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> StopSignals:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue
            try:
                loop.add_signal_handler(sig, self._received, sig)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                continue
            self._installed.append(sig)
        return self

    def __exit__(self, *exc: object) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)

    def cancels(self, cancel: Callable[[], object]) -> None:
        """What the first signal stops: the task sending the calls."""
        self._cancel = cancel

    def now_waiting_for(self, what: str) -> None:
        """What the cleanup waits for, said to a user who presses Ctrl-C again."""
        self._waiting_for = what
        self._cancel = None  # the calls are over: a signal now only hurries the cleanup

    def _received(self, sig: signal.Signals) -> None:
        if self.received is None:
            self.received = sig.name
        if self._cancel is not None:
            cancel, self._cancel = self._cancel, None
            cancel()
        elif not self._warned:
            self._warned = True
            print(
                f"finishing: waiting for {self._waiting_for}; press Ctrl-C again to abandon "
                "(the runs are still marked KILLED)",
                file=sys.stderr,
                flush=True,
            )
        else:
            self._on_abandon()


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[Callable[[], str]]:
    """Outside the event loop (registration): SIGTERM and SIGHUP raise KeyboardInterrupt as
    Ctrl-C does, so the code they interrupt cleans up instead of the process vanishing. Yields
    a function that names the signal received (SIGINT when none was caught here)."""
    received: list[str] = []

    def interrupt(sig: int, frame: object) -> None:
        received.append(signal.Signals(sig).name)
        raise KeyboardInterrupt

    previous = {}
    for sig in STOP_SIGNALS[1:]:  # SIGINT already raises KeyboardInterrupt
        if signal.getsignal(sig) is not signal.SIG_IGN:
            previous[sig] = signal.signal(sig, interrupt)
    try:
        yield lambda: received[0] if received else "SIGINT"
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


ABANDON_WAIT_S = 5.0


def abandon(
    end_runs: Callable[[list[str], str], None] | None, run_ids: list[str], resume_command: str
) -> None:
    """Exit now (code 130) on a third stop signal, after marking the runs KILLED.

    They are marked from a thread given a few seconds: a store that does not answer (often why
    a user presses Ctrl-C three times) must not hold the process. `end_runs` is None before any
    run exists."""
    if end_runs is None or not run_ids:
        print("abandoned before any MLflow run was created", file=sys.stderr, flush=True)
        os._exit(130)
    ended: list[str] = []

    def end() -> None:
        try:
            end_runs(run_ids, "KILLED")
        except Exception as e:  # noqa: BLE001 - said in the one line below, then the exit
            ended.append(f"could not be ended: {one_line(e)}")
        else:
            ended.append("was ended as KILLED")

    ending = threading.Thread(target=end, daemon=True)
    ending.start()
    ending.join(ABANDON_WAIT_S)
    outcome = ended[0] if ended else "could not be ended in time"
    print(
        f"abandoned: MLflow run {run_ids[0]} {outcome}; resume: {resume_command}",
        file=sys.stderr,
        flush=True,
    )
    os._exit(130)
