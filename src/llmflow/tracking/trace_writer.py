"""The trace writer: one MLflow trace per call, written by a child process while the calls run.

Why a process and not a thread: MLflow's store spends about 2 ms of Python CPU per trace. In a
thread, that CPU competes for the GIL with the event loop that times the calls. Measured here
(1,000 calls at concurrency 16 against a 100 ms server), a writer thread stretched the recorded
p95 latency from 154 to 178 ms and, against a 0 ms server, made the run 2x slower than the raw SDK.
In a child process the writes run on another core and never touch the timing of a call.

The child is `python -m llmflow.writer_process`, a fresh interpreter (no fork of a process with
threads, no re-import of the caller's script), which runs `trace_child.serve`. Importing MLflow
takes it a second or two, so it is started as early as possible and outlives its run to serve
the next run of the same Python process (a notebook, the test suite): writer_pool.py. It is in a
session of its own: Ctrl-C reaches only the parent, which ends the runs and then closes the
writer.

The child also keeps the run's MLflow store, so that the parent never imports MLflow
(store_child.py, writer_process.py): the parent asks it to open the store, create the runs and,
once the calls are in, finish them.

Its stdin carries pickled messages, per run: ("open", tracking_uri, check_types, cwd, environ,
providers), ("begin", experiment_id, variants, checks) once the runs exist, ("call", record,
variant_id, run_id) per finished call, ("do", task, args) for each store task (done once every
trace before it is written; answered ("done", value) or ("raised", error)), then ("end",).
("now", task, args) is done at once, beside whatever runs (the runs are ended while a user
abandons the wait). At the run's end its stdout answers ("end", written, reason): the number of
traces written and the first reason one could not be. The scores it gave each call stay in the
child, where the finishing uses them (the parent never scores, nor imports the checks'
libraries: sacrebleu for chrF).
A tracking server that stops answering is waited for (server_wait_s(), 2 minutes by default);
past that, the child says ("gone", reason) at once, mid-run, so that the parent stops sending
calls. If the parent dies mid-run (kill -9), the input ends without ("end",) and the child exits
at once, as a thread would have died with it: `llmflow run --resume` then writes every missing
trace from the journal.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import TrackingError
from ..plan import Variant
from ..providers.spec import added_providers
from ..redact import one_line
from ..scoring import CaseChecks
from ..types import CallRecord
from .writer_pool import return_child, stop, take_child

logger = logging.getLogger(__name__)

END = ("end",)  # the last message of a run


class TraceWriter:
    """Accepts records from any thread; `close()` returns once every trace is written."""

    def __init__(self, tracking_uri: str, check_types: Iterable[str] = ()) -> None:
        """`check_types`: the checks the calls will be scored with, whose libraries the child
        loads while the parent is still opening the store."""
        self._child = take_child(tracking_uri)
        self._outbox: queue.SimpleQueue[tuple[Any, ...] | bytes] = queue.SimpleQueue()
        kinds = tuple(sorted(set(check_types)))
        # a child kept from an earlier run works where this one does, with its environment
        # and the providers registered here at run time
        context = (os.getcwd(), dict(os.environ), added_providers())
        self._outbox.put(("open", tracking_uri, kinds, *context))
        # sends from its own thread: a full pipe must never block the event loop
        self._sender = threading.Thread(target=self._send_all, name="llmflow-traces", daemon=True)
        self._sender.start()
        self._replies: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._answers: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._answers_now: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._asking = threading.Lock()  # one task at a time: answers come back in order
        self._child_gone = False
        self._gone_callbacks: list[Callable[[], None]] = []
        self._closed = False
        self.submitted = 0
        self.written = 0
        self.failure_reason: str | None = None  # why the first trace that failed did
        self.server_gone: str | None = None  # why, once the server stayed away past the bound
        # the replies' reader starts once every attribute it touches exists
        threading.Thread(target=self._read_replies, name="llmflow-traces-in", daemon=True).start()

    def begin(
        self,
        experiment_id: str,
        variants: Iterable[Variant],
        checks: dict[str, CaseChecks] | None = None,
    ) -> None:
        """Where the traces go, and what each case is checked with (the child scores each call
        and writes its scores as assessments, off the calls' path); before the first `submit`,
        once the runs exist."""
        self._outbox.put(("begin", experiment_id, {v.id: v for v in variants}, checks))

    def submit(self, record: CallRecord, variant: Variant, run_id: str) -> None:
        self.submitted += 1
        self._outbox.put(("call", record, variant.id, run_id))

    def ask(self, task: str, *args: Any) -> Any:
        """Have the child do a store task (writer_process.StoreTasks) once every trace submitted
        before is written; its value, or its exception raised here."""
        with self._asking:
            return self._answer(("do", task, args), self._answers)

    def ask_now(self, task: str, *args: Any) -> Any:
        """A store task done at once, beside any task or trace the child is busy with."""
        return self._answer(("now", task, args), self._answers_now)

    def _answer(
        self, message: tuple[Any, ...], answers: queue.SimpleQueue[tuple[Any, ...] | None]
    ) -> Any:
        if self._closed or self._child_gone:
            raise TrackingError("the trace writer process has exited: the store is out of reach")
        try:  # here, not in the sender: what cannot cross is this caller's error
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as e:  # noqa: BLE001 - any value that cannot be pickled
            reason = f"cannot send {message[1]} to the trace writer: {one_line(e)}"
            raise TrackingError(reason) from e
        self._outbox.put(data)
        answer = answers.get()
        if answer is None:
            raise TrackingError("the trace writer process exited early")
        kind, value = answer
        if kind == "raised":
            raise value
        return value

    def on_server_gone(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from another thread) once the tracking server has stayed away past
        server_wait_s(): this run's remaining traces will not be written."""
        self._gone_callbacks.append(callback)
        if self.server_gone is not None:
            callback()

    def close(self) -> None:
        """Wait for every trace; what the child did not confirm as written counts as failed.
        Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._outbox.put(END)
        self._sender.join()
        reply = self._replies.get()
        if reply is not None:
            _, self.written, reason = reply
            self.failure_reason = reason or None
            return_child(self._child)
        else:
            self.failure_reason = "the trace writer process exited early"
            stop(self._child)

    def drain(self) -> None:
        """Wait until every trace submitted so far is written; `written` and `failure_reason`
        then say how it went. The child stays with this run (its store tasks) until close()."""
        try:
            self.written, reason = self.ask("traces_written")
        except TrackingError:
            reason = "the trace writer process exited early"
        self.failure_reason = reason or None

    def abandon(self) -> None:
        """Stop the child now (a user gave up waiting): what it had not written stays
        unwritten, and `llmflow run --resume` writes it."""
        self._closed = True
        self._child.kill()

    @property
    def failed(self) -> int:
        """Traces submitted but not confirmed as written (all of them until `close()`)."""
        return self.submitted - self.written

    def _read_replies(self) -> None:
        """The child's replies until the one to this run's end (then the child is free for
        another run and another reader); "gone" is passed on as it comes, answers to tasks to
        the one asking."""
        assert self._child.stdout is not None
        while True:
            try:
                reply = pickle.load(self._child.stdout)
            except Exception:  # noqa: BLE001 - the child exited: close() counts what is unwritten
                reply = None
            if reply is None:
                self._child_gone = True
                for waiting in (self._answers, self._answers_now, self._replies):
                    waiting.put(None)
                return
            kind = reply[0]
            if kind == "gone":
                self.server_gone = reply[1]
                for callback in self._gone_callbacks:
                    callback()
            elif kind == "now":
                self._answers_now.put(reply[1:])
            elif kind in ("done", "raised"):
                self._answers.put(reply)
            else:
                self._replies.put(reply)
                return

    def _send_all(self) -> None:
        stdin = self._child.stdin
        assert stdin is not None
        try:
            while True:
                message = self._outbox.get()
                if isinstance(message, bytes):  # a task, pickled by its caller
                    stdin.write(message)
                else:
                    try:
                        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
                    except Exception:  # noqa: BLE001 - a call that cannot be sent is unwritten
                        logger.debug("cannot send a %s message", message[0], exc_info=True)
                        continue
                    stdin.write(data)
                stdin.flush()
                if message == END:
                    return
        except OSError:  # the child is gone; close() counts what it never wrote
            pass
