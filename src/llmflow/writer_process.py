"""The trace writer's process: `python -m llmflow.writer_process`, started by `llmflow run`
(tracking/writer_pool.py). It writes one MLflow trace per call (tracking/trace_child.serve) and
keeps the run's MLflow store: the parent, which never imports MLflow, asks it to open the store,
create the runs and, once the calls are in, finish and register them (tracking/store_child.py
is the parent's side).

A task runs in the child's main loop once every trace submitted before it is written, so the
finishing sees every trace. Its exception comes back to the parent and is raised there; one that
cannot cross a pipe comes back as a TrackingError with the same one line. With `--debug`, the
child's traceback is in the exception's notes.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .errors import TrackingError
from .redact import one_line

if TYPE_CHECKING:
    from .finishing import Finishing
    from .registry.registration import Registration
    from .report import Comparison
    from .report.data import ReportData
    from .tracking.runs import RunStore
    from .tracking.trace_child import ScoresByVariant
    from .types import CallRecord


class WriterState(Protocol):
    """What the child's trace writing tells the tasks (trace_child.ChildState)."""

    written: int
    failure_reason: str
    scores: ScoresByVariant


class StoreTasks:
    """What `StoreInChild` asks, done with this process's own store."""

    NAMES = frozenset(
        {
            "open_store",
            "experiment_id",
            "check_resumable",
            "open_runs",
            "reopen",
            "end_runs",
            "untraced",
            "finish_variants",
            "finish_parent",
            "register",
            "traces_written",
        }
    )

    def __init__(self, writer: WriterState) -> None:
        self._writer = writer  # the run's traces and the scores given to its calls
        self._store: RunStore | None = None
        self._finishing: Finishing | None = None  # between finish_variants and finish_parent

    def answer(self, task: str, args: tuple[Any, ...]) -> tuple[str, Any]:
        """("done", value), or ("raised", the exception) ready to cross the pipe."""
        if task not in self.NAMES:
            return "raised", TrackingError(f"the trace writer has no task {task!r}")
        try:
            return "done", getattr(self, task)(*args)
        except BaseException as e:  # noqa: BLE001 - raised again in the parent, which decides
            return "raised", portable(e)

    @property
    def store(self) -> RunStore:
        if self._store is None:
            raise TrackingError("the trace writer was asked for the store before opening it")
        return self._store

    def traces_written(self) -> tuple[int, str]:
        """The traces written so far, and why the first that failed did ("": none did)."""
        return self._writer.written, self._writer.failure_reason

    def open_store(self, tracking_uri: str) -> str:
        from .tracking.runs import open_store

        self._store = None
        self._store = open_store(tracking_uri)
        return self._store.tracking_uri

    def experiment_id(self, name: str) -> str:
        return self.store.experiment_id(name)

    def check_resumable(self, parent_id: str, experiment: str) -> None:
        self.store.check_resumable(parent_id, experiment)

    def open_runs(self, *args: Any) -> tuple[str, dict[str, str]]:
        return self.store.open_runs(*args)

    def reopen(self, parent_id: str, run_ids: list[str]) -> None:
        self.store.reopen(parent_id, run_ids)

    def end_runs(self, run_ids: list[str], status: str) -> None:
        self.store.end_runs(run_ids, status)

    def untraced(
        self, experiment_id: str, run_ids: dict[str, str], records: dict[str, list[CallRecord]]
    ) -> list[tuple[CallRecord, str]]:
        from .tracking.traces import untraced

        return list(untraced(self.store.client, experiment_id, run_ids, records))

    def finish_variants(
        self, finishing: tuple[Any, ...], run_ids: dict[str, str], status: str
    ) -> tuple[Comparison, ReportData | None]:
        from .finishing import Finishing

        loaded, plan, result, judged, trained = finishing
        scores = self._writer.scores
        self._finishing = Finishing(self.store, loaded, plan, result, judged, trained, scores)
        comparison = self._finishing.finish_variants(run_ids, status)
        return comparison, self._finishing.report_data(comparison)

    def finish_parent(
        self,
        comparison: Comparison,
        status: str,
        journal_dir: Path | None,
        report_dir: Path | None,
    ) -> list[str]:
        finishing = self._finishing
        if finishing is None:
            raise TrackingError("the trace writer was asked to end runs it has not finished")
        finishing.finish_parent(comparison, status, journal_dir, report_dir)
        return finishing.result.problems

    def register(self, loaded: Any, plan: Any, register_all: bool, comparison: Any) -> Registration:
        from .registry.registration import register_and_promote

        return register_and_promote(self.store.client, loaded, plan, register_all, comparison)


def portable(error: BaseException) -> BaseException:
    """`error` as it can cross a pipe, with the child's traceback as a note (for --debug). One
    of MLflow's (whose unpickling would import MLflow into the parent), or one whose class
    cannot be rebuilt from its pickle, becomes a TrackingError with the same one line."""
    error.add_note("in the trace writer's process:\n" + "".join(traceback.format_exception(error)))
    try:
        if type(error).__module__.partition(".")[0] == "mlflow":
            raise TypeError("kept out of the parent")
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any failure to cross: the same line, in a plain class
        crossed = TrackingError(one_line(error))
        crossed.__notes__ = error.__notes__
        return crossed
    return error


def main() -> None:
    from ._process import LeanImportFailed, prepare_worker_process, restart_without_tricks

    prepare_worker_process()
    from .tracking.trace_child import serve, start_child

    try:
        messages, replies = start_child(sys.argv[1:])
    except LeanImportFailed:
        restart_without_tricks()
    serve(messages, replies, StoreTasks)


if __name__ == "__main__":
    main()
