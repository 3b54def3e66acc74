"""The worker's loop: gathers the parent's messages (protocol.py) into batches of calls, writes
each batch's traces and scores (tracing.RunState), and answers the store tasks in order
(handlers.py), each once every trace sent before it is written.

If the parent dies mid-run (kill -9), its input ends without EndRun and the worker exits 1 at
once: `llmflow run --resume` writes every missing trace from the journal. Between runs, the end
of the input is the parent's normal exit (0). Anything this loop did not expect (bytes it cannot
read, a writer that raised) is logged with its traceback and exits non-zero.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from multiprocessing.connection import Connection

from ..errors import TrackingError
from ..redact import one_line
from ..tracking.traces import BATCH, TraceJob
from .context import store_retries
from .handlers import Worker, answer
from .protocol import (
    PROTOCOL_VERSION,
    Answer,
    Ask,
    BeginCalls,
    EndRun,
    Hello,
    Now,
    OpenRun,
    Raised,
    Reply,
    RunEnded,
    TraceCall,
)
from .tracing import RunState

logger = logging.getLogger(__name__)

_GATHER_S = 0.05  # after a call arrives, wait this long for more to share its batch
EXIT_PARENT_DIED = 1  # the input ended within a run
EXIT_UNEXPECTED = 3  # bytes that are no message, a message of no known kind, a writer's bug

Inbound = OpenRun | BeginCalls | TraceCall | EndRun | Ask[object]


def serve(requests: Connection, replies: Connection) -> None:
    """One run after another: gather what has arrived (up to a batch), write it, repeat; answer
    each task once the traces before it are written; at each run's end, say how it went."""
    lock = threading.Lock()  # replies come from the main loop, the writers and Now tasks

    def reply(message: Reply) -> None:
        with lock:
            _send(replies, message)

    reply(Hello(PROTOCOL_VERSION))
    worker = Worker(RunState(notify=reply))
    inbox: queue.SimpleQueue[Inbound] = queue.SimpleQueue()

    def now(message: Now) -> None:
        threading.Thread(target=lambda: reply(answer(worker, message.request, now=True))).start()

    threading.Thread(target=_receive_all, args=(requests, inbox, now), daemon=True).start()
    _loop(worker, inbox, reply)


def _loop(
    worker: Worker, inbox: queue.SimpleQueue[Inbound], reply: Callable[[Reply], None]
) -> None:
    run = worker.run
    pool = ThreadPoolExecutor(4, thread_name_prefix="llmflow-write")
    writing: set[Future[None]] = set()
    while True:
        # all writers busy: wait, and the calls arriving meanwhile make the next batch bigger
        while len(writing) >= run.writers:
            writing = _check(wait(writing, return_when=FIRST_COMPLETED))
        batch, ended = _gather(inbox)
        task = batch.pop() if batch and isinstance(batch[-1], Ask) else None
        assert task is None or isinstance(task, Ask)
        jobs = _take(run, batch)
        if jobs:
            writing.add(pool.submit(run.write, jobs))
        if task is not None or ended:  # a task sees every trace submitted before it
            _check(wait(writing))
            writing = set()
        if task is not None:
            with store_retries():  # no trace is being written meanwhile
                reply(answer(worker, task))
            for first in range(0, len(run.pending), BATCH):  # traces the task asked for
                writing.add(pool.submit(run.write, run.pending[first : first + BATCH]))
            run.pending = []
        if ended:
            reply(RunEnded(run.counts()))


def _take(run: RunState, batch: list[Inbound]) -> list[TraceJob]:
    """Apply the run's stream messages in order; the calls' trace jobs."""
    jobs: list[TraceJob] = []
    for message in batch:
        if isinstance(message, OpenRun):
            run.open(message)
        elif isinstance(message, BeginCalls):
            run.begin(message)
        elif isinstance(message, TraceCall):
            jobs.append(run.take(message))
    return jobs


def _check(done_and_not: tuple[set[Future[None]], set[Future[None]]]) -> set[Future[None]]:
    """The writers still busy; a writer that raised (RunState.write counts every failure it
    expects) is a bug: the worker stops, with the traceback, rather than lose traces quietly."""
    done, not_done = done_and_not
    for future in done:
        error = future.exception()
        if error is not None:
            _die("a trace writer raised", error)
    return not_done


def _gather(inbox: queue.SimpleQueue[Inbound]) -> tuple[list[Inbound], bool]:
    """Wait for a message, then take those that follow within _GATHER_S of each other, up to a
    batch of calls, a task, or the end of a run (then True)."""
    batch: list[Inbound] = []
    calls = 0
    message = inbox.get()
    while not isinstance(message, EndRun):
        batch.append(message)
        calls += isinstance(message, TraceCall)
        if calls == BATCH or isinstance(message, Ask):
            return batch, False
        try:
            message = inbox.get(timeout=_GATHER_S)
        except queue.Empty:
            return batch, False
    return batch, True


def _receive_all(
    requests: Connection, inbox: queue.SimpleQueue[Inbound], now: Callable[[Now], None]
) -> None:
    in_run = False
    while True:
        try:
            message = requests.recv()
        except (EOFError, OSError):  # between runs, the parent is done; within one, it died
            os._exit(EXIT_PARENT_DIED if in_run else 0)
        except BaseException as e:  # noqa: BLE001 - bytes that are no message: never "exited"
            _die("the worker cannot read a message from the parent", e)
        if isinstance(message, Now):
            now(message)
            continue
        if not isinstance(message, OpenRun | BeginCalls | TraceCall | EndRun | Ask):
            _die("the worker got a message of no known kind", TypeError(type(message).__name__))
        in_run = not isinstance(message, EndRun)
        inbox.put(message)


def _send(replies: Connection, message: Reply) -> None:
    try:
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as e:  # noqa: BLE001 - a value that cannot cross: the asker hears why
        error = TrackingError(f"the worker cannot send its answer: {one_line(e)}")
        now = isinstance(message, Answer | Raised) and message.now
        data = pickle.dumps(Raised(error, now=now))
    try:
        replies.send_bytes(data)
    except OSError:  # the parent is gone
        os._exit(EXIT_PARENT_DIED)


def _die(what: str, error: BaseException) -> None:
    """Stop the worker on what it did not expect: the traceback on stderr, a non-zero exit (the
    parent reads the exit as a worker out of reach and counts the unwritten traces)."""
    detail = "".join(traceback.format_exception(error))
    logger.critical("%s: %s\n%s", what, one_line(error), detail)
    os._exit(EXIT_UNEXPECTED)
