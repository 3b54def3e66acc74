"""One handler per store task (protocol.Ask), in one table: what the worker does when the
parent asks. A handler's exception crosses back and is raised in the parent; one that cannot
cross becomes a TrackingError with the same line. Under --debug, the worker's traceback is in
the exception's notes."""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import TrackingError
from ..redact import one_line
from .protocol import (
    Answer,
    Ask,
    CheckResumable,
    EndRuns,
    ExperimentId,
    Finished,
    FinishRun,
    OpenRuns,
    OpenStore,
    Raised,
    Register,
    Reopen,
    Resume,
    TraceCount,
    TracesWritten,
)
from .tracing import RunState

if TYPE_CHECKING:
    from ..registry.registration import Registration
    from ..tracking.runs import RunStore
    from ..types import CallRecord


@dataclass
class Worker:
    """What the handlers work with: the run's traces and calls, and the store once opened."""

    run: RunState
    _store: RunStore | None = None

    @property
    def store(self) -> RunStore:
        if self._store is None:
            raise TrackingError("the worker was asked for the store before opening it")
        return self._store


def open_store(worker: Worker, request: OpenStore) -> str:
    from ..tracking.runs import open_store

    worker._store = None
    worker._store = open_store(request.tracking_uri)
    return worker._store.tracking_uri


def experiment_id(worker: Worker, request: ExperimentId) -> str:
    return worker.store.experiment_id(request.name)


def check_resumable(worker: Worker, request: CheckResumable) -> None:
    worker.store.check_resumable(request.parent_run_id, request.experiment)


def open_runs(worker: Worker, request: OpenRuns) -> tuple[str, dict[str, str]]:
    return worker.store.open_runs(
        request.experiment_id,
        request.loaded,
        request.prompt_set,
        list(request.variants),
        request.system_prompt,
        request.version,
    )


def reopen(worker: Worker, request: Reopen) -> None:
    worker.store.reopen(request.parent_run_id, request.run_ids)


def end_runs(worker: Worker, request: EndRuns) -> None:
    worker.store.end_runs(request.run_ids, request.status)


def resume(worker: Worker, request: Resume) -> int:
    """Keep the journaled calls for the finish; queue the traces a kill prevented; note the
    calls traced as failed (sent again, their traces are restated)."""
    from ..tracking.traces import traces_to_resume

    run = worker.run
    by_variant: dict[str, list[CallRecord]] = {}
    for record in request.records:
        run.records.add(record)
        by_variant.setdefault(record.variant_id, []).append(record)
    found = traces_to_resume(worker.store.client, run.experiment_id, request.run_ids, by_variant)
    run.failed_traces = found.failed
    run.pending.extend(run.job(record, run_id) for record, run_id in found.untraced)
    return len(run.pending)


def traces_written(worker: Worker, request: TracesWritten) -> TraceCount:
    return worker.run.counts()


def finish_run(worker: Worker, request: FinishRun) -> Finished:
    from .finish import finish_run

    return finish_run(worker.store, worker.run, request)


def register(worker: Worker, request: Register) -> Registration:
    from ..registry.registration import register_and_promote

    return register_and_promote(
        worker.store.client, request.loaded, request.plan, request.register_all, request.comparison
    )


# the one table: a request's type picks its handler
HANDLERS: dict[type[Ask[object]], Callable[[Worker, Any], object]] = {
    OpenStore: open_store,
    ExperimentId: experiment_id,
    CheckResumable: check_resumable,
    OpenRuns: open_runs,
    Reopen: reopen,
    EndRuns: end_runs,
    Resume: resume,
    TracesWritten: traces_written,
    FinishRun: finish_run,
    Register: register,
}


def answer(worker: Worker, request: Ask[object], now: bool = False) -> Answer | Raised:
    """The handler's value, or its exception ready to cross the pipe."""
    handler = HANDLERS.get(type(request))
    if handler is None:
        return Raised(TrackingError(f"the worker has no handler for {type(request).__name__}"), now)
    try:
        return Answer(handler(worker, request), now)
    except BaseException as e:  # noqa: BLE001 - raised again in the parent, which decides
        return Raised(portable(e), now)


def portable(error: BaseException) -> BaseException:
    """`error` as it can cross a pipe, with the worker's traceback as a note (for --debug). One
    of MLflow's (whose unpickling would import MLflow into the parent), or one whose class
    cannot be rebuilt from its pickle, becomes a TrackingError with the same one line."""
    error.add_note("in the worker's process:\n" + "".join(traceback.format_exception(error)))
    try:
        if type(error).__module__.partition(".")[0] == "mlflow":
            raise TypeError("kept out of the parent")
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to cross: the same line, in a plain class
        crossed = TrackingError(one_line(error))
        crossed.__notes__ = error.__notes__
        return crossed
    return error
