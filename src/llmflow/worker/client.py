"""The parent's side of the worker: sends each finished call and each store task, and reads the
answers. The parent never imports MLflow; the worker (server.py) keeps the store.

Sending happens on a thread of its own, so a full pipe never blocks the event loop that times
the calls. A reply this process cannot read is a protocol error, told apart from the worker's
exit: both leave the store out of reach, with the reason in the error.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

from ..errors import TrackingError
from ..providers.spec import added_providers
from ..redact import one_line
from ..types import CallRecord
from . import pool
from .protocol import (
    PROTOCOL_VERSION,
    Answer,
    Ask,
    BeginCalls,
    EndRun,
    EndRuns,
    Hello,
    Now,
    OpenRun,
    Raised,
    RunEnded,
    ServerAway,
    TraceCall,
    TraceCount,
    TracesWritten,
    Written,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Waiting = queue.SimpleQueue[Answer | Raised | None]  # None: the worker is out of reach


class WorkerClient:
    """One run's worker. Accepts calls from any thread; `close()` returns once every trace is
    written."""

    def __init__(self, tracking_uri: str, check_types: Iterable[str] = (), report: bool = False):
        """`check_types` and `report`: what the worker imports while the parent is still
        opening the providers (the checks' libraries, matplotlib)."""
        self._worker = pool.take(tracking_uri)
        self._outbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._answers: _Waiting = queue.SimpleQueue()
        self._answers_now: _Waiting = queue.SimpleQueue()
        self._ended: queue.SimpleQueue[RunEnded | None] = queue.SimpleQueue()
        self._asking = threading.Lock()  # one task at a time: answers come back in order
        self._out_of_reach: str | None = None  # why the worker cannot be asked any more
        self._away_callbacks: list[Callable[[], None]] = []
        self._closed = False
        self.submitted = 0
        self.done = 0  # calls the worker is done with, as it last said (Written)
        self.traces = TraceCount(0, "")
        self.server_gone: str | None = None  # why, once the server stayed away past the bound
        kinds = tuple(sorted(set(check_types)))
        context = (os.getcwd(), dict(os.environ), added_providers())
        self._outbox.put(OpenRun(tracking_uri, kinds, report, *context))
        self._sender = threading.Thread(target=self._send_all, name="llmflow-worker", daemon=True)
        self._sender.start()
        threading.Thread(target=self._read_replies, name="llmflow-worker-in", daemon=True).start()

    @property
    def failure_reason(self) -> str | None:
        """Why the first trace that failed did."""
        return self.traces.failure_reason or None

    @property
    def failed(self) -> int:
        """Traces submitted but not confirmed as written (all of them until the worker says)."""
        return self.submitted - self.traces.written

    @property
    def waiting(self) -> int:
        """Calls submitted whose trace the worker has not written (nor failed) yet; 0 once it
        cannot be reached: nothing will drain."""
        if self._out_of_reach is not None or self.server_gone is not None:
            return 0
        return self.submitted - self.done

    def begin(self, calls: BeginCalls) -> None:
        """Once the runs exist, before the first `submit`."""
        self._outbox.put(calls)

    def submit(self, record: CallRecord, run_id: str) -> None:
        self.submitted += 1
        self._outbox.put(TraceCall(record, run_id))

    def ask(self, request: Ask[T]) -> T:
        """Have the worker do a store task once every trace submitted before is written; its
        answer, or its exception raised here."""
        with self._asking:
            return self._answer(request, self._answers)

    def end_runs_now(self, request: EndRuns) -> None:
        """End runs at once, beside any task or trace the worker is busy with."""
        self._answer(Now(request), self._answers_now)

    def _answer(self, request: Ask[T] | Now, answers: _Waiting) -> T:
        if self._closed or self._out_of_reach:
            raise TrackingError(
                self._out_of_reach or "the worker was closed: the store is out of reach"
            )
        try:  # here, not in the sender: what cannot cross is this caller's error
            data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - any value that cannot be pickled
            name = type(request).__name__
            raise TrackingError(f"cannot send {name} to the worker: {one_line(e)}") from e
        self._outbox.put(data)
        answer = answers.get()
        if answer is None:
            raise TrackingError(self._out_of_reach or "the worker exited early")
        if isinstance(answer, Raised):
            raise answer.error
        return answer.value  # type: ignore[return-value]  # the worker answers T to an Ask[T]

    def on_server_gone(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from another thread) once the tracking server has stayed away past
        its bound: this run's remaining traces will not be written."""
        self._away_callbacks.append(callback)
        if self.server_gone is not None:
            callback()

    def drain(self) -> None:
        """Wait until every trace submitted so far is written; `traces` then says how it went."""
        try:
            self.traces = self.ask(TracesWritten())
        except TrackingError as e:
            self.traces = TraceCount(self.traces.written, str(e))

    def close(self) -> None:
        """End the run in the worker, which then waits for the next run. Closing again does
        nothing."""
        if self._closed:
            return
        self._closed = True
        self._outbox.put(EndRun())
        self._sender.join()
        ended = self._ended.get()
        if ended is not None:
            self.traces = ended.traces
            pool.give_back(self._worker)
        else:
            self.traces = TraceCount(self.traces.written, self._out_of_reach or "the worker exited")
            pool.stop(self._worker)

    def abandon(self) -> None:
        """Stop the worker now (a user gave up waiting): what it had not written stays
        unwritten, and `llmflow run --resume` writes it."""
        self._closed = True
        self._worker.kill()

    def _read_replies(self) -> None:
        """The worker's replies until the one to this run's end (then the worker is free for
        another run and another reader)."""
        worker = self._worker
        while True:
            try:
                reply = worker.replies.recv()
            except (EOFError, OSError):
                self._lost("the worker exited early")
                return
            except Exception as e:  # noqa: BLE001 - bytes this side cannot read: a protocol error
                logger.debug("unreadable reply from the worker", exc_info=True)
                worker.kill()
                self._lost(f"the worker sent a reply this process cannot read: {one_line(e)}")
                return
            if not worker.greeted:
                if reply != Hello(PROTOCOL_VERSION):
                    worker.kill()
                    self._lost(
                        f"the worker said {reply!r}: not protocol {PROTOCOL_VERSION}'s Hello"
                    )
                    return
                worker.greeted = True
            elif not self._take(reply):
                return

    def _take(self, reply: object) -> bool:
        """One reply within a run; whether more are to come."""
        if isinstance(reply, ServerAway):
            self.server_gone = reply.reason
            for callback in self._away_callbacks:
                callback()
        elif isinstance(reply, Written):
            self.done = reply.calls
        elif isinstance(reply, Answer | Raised):
            (self._answers_now if reply.now else self._answers).put(reply)
        elif isinstance(reply, RunEnded):
            self._ended.put(reply)
            return False
        else:
            self._worker.kill()
            self._lost(f"the worker sent an unexpected reply: {type(reply).__name__}")
            return False
        return True

    def _lost(self, reason: str) -> None:
        self._out_of_reach = reason
        for waiting in (self._answers, self._answers_now):
            waiting.put(None)
        self._ended.put(None)

    def _send_all(self) -> None:
        requests = self._worker.requests
        try:
            while True:
                message = self._outbox.get()
                if isinstance(message, bytes):  # an ask, pickled by its caller
                    requests.send_bytes(message)
                    continue
                try:
                    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:  # noqa: BLE001 - plain data always pickles: a bug, never silent
                    logger.error(
                        "cannot send %s to the worker", type(message).__name__, exc_info=True
                    )
                    continue
                requests.send_bytes(data)
                if isinstance(message, EndRun):
                    return
        except OSError:  # the worker is gone; close() counts what it never wrote
            pass
