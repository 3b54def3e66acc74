"""The run's MLflow store, kept in the trace writer's process: the process that sends the calls
never imports MLflow.

Why: MLflow's import and store cost seconds of CPU and about 120 MB per process. When both the
calls' process and the trace writer imported it, a run paid that twice, on a 2-core machine
the calls' process competed with the writer for the CPU during its start, and their memory
added up. Now the parent asks the child (`StoreInChild`, over the writer's pipe), and the child
does the work with its own store (`StoreTasks`): opening the store, creating and ending the
runs, and the finishing (metrics, tables, assessments, the comparison, the report, the
registration) once every trace is written.

A task runs in the child's main loop after every trace submitted before it is written, so the
finishing sees every trace. Its exception comes back to the parent and is raised there; one
that cannot cross a pipe comes back as a TrackingError with the same one line. With `--debug`,
the child's traceback is in the exception's notes.
"""

from __future__ import annotations

import contextlib
import pickle
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import TrackingError
from ..redact import one_line

if TYPE_CHECKING:
    from ..config import LoadedExperiment
    from ..finishing import Finishing
    from ..plan import Plan, Variant
    from ..registry.registration import Registration
    from ..report import Comparison
    from ..report.data import ReportData
    from ..run_types import RunResult
    from ..scoring.judge import Judged
    from ..types import CallRecord
    from .runs import RunStore
    from .trace_writer import ScoresByVariant, TraceWriter


class WriterState(Protocol):
    """What the child's trace writing tells the tasks (trace_writer._ChildState)."""

    written: int
    failure_reason: str
    scores: ScoresByVariant


class StoreInChild:
    """The parent's view of the store: each method is done by the trace writer's child."""

    def __init__(self, writer: TraceWriter) -> None:
        self._writer = writer
        self.tracking_uri = ""

    def open(self, tracking_uri: str) -> None:
        """Open and check the store (one line when it cannot be used); seconds, since the
        child imports MLflow first."""
        self.tracking_uri = self._writer.ask("open_store", tracking_uri)

    def experiment_id(self, name: str) -> str:
        return self._writer.ask("experiment_id", name)

    def check_resumable(self, parent_id: str, experiment: str) -> None:
        self._writer.ask("check_resumable", parent_id, experiment)

    def open_runs(
        self,
        experiment_id: str,
        loaded: LoadedExperiment,
        variants: list[tuple[Variant, dict[str, Any]]],
        system_prompt: str | None,
        version: str,
    ) -> tuple[str, dict[str, str]]:
        return self._writer.ask(
            "open_runs", experiment_id, loaded, variants, system_prompt, version
        )

    def reopen(self, parent_id: str, run_ids: Sequence[str]) -> None:
        self._writer.ask("reopen", parent_id, list(run_ids))

    def end_runs(self, run_ids: Sequence[str], status: str) -> None:
        self._writer.ask("end_runs", list(run_ids), status)

    def end_runs_now(self, run_ids: Sequence[str], status: str) -> None:
        """End the runs without waiting for the traces in flight (a user abandons the wait)."""
        self._writer.ask_now("end_runs", list(run_ids), status)

    def untraced(
        self, experiment_id: str, run_ids: dict[str, str], records: dict[str, list[CallRecord]]
    ) -> list[tuple[CallRecord, str]]:
        """The journaled calls whose trace a kill prevented, each with its variant run."""
        return self._writer.ask("untraced", experiment_id, run_ids, records)

    def finish_variants(
        self,
        finishing: tuple[LoadedExperiment, Plan, RunResult, Judged | None, dict[str, Any]],
        run_ids: dict[str, str],
        status: str,
    ) -> tuple[Comparison, ReportData | None]:
        """finishing.Finishing's variant runs, with the scores the child gave each call: the
        comparison, and what the report shows when the file asks for one."""
        return self._writer.ask("finish_variants", finishing, run_ids, status)

    def finish_parent(
        self,
        comparison: Comparison,
        status: str,
        journal_dir: Path | None,
        report_dir: Path | None,
    ) -> list[str]:
        """The parent run, with the report's files rendered into `report_dir`; the run's
        problems (the ones passed to finish_variants, and the finishing's)."""
        return self._writer.ask("finish_parent", comparison, status, journal_dir, report_dir)

    def register(
        self,
        loaded: LoadedExperiment,
        plan: Plan,
        register_all: bool,
        comparison: Comparison | None,
    ) -> Registration:
        return self._writer.ask("register", loaded, plan, register_all, comparison)


class StoreTasks:
    """The child's side: what `StoreInChild` asks, done with the child's own store."""

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
        self._run_ids: list[str] = []  # the parent run's and the variants'

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
        from .runs import open_store

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
        from .traces import untraced

        return list(untraced(self.store.client, experiment_id, run_ids, records))

    def finish_variants(
        self, finishing: tuple[Any, ...], run_ids: dict[str, str], status: str
    ) -> tuple[Comparison, ReportData | None]:
        from ..finishing import Finishing

        loaded, plan, result, judged, trained = finishing
        scores = self._writer.scores
        self._finishing = Finishing(self.store, loaded, plan, result, judged, trained, scores)
        self._run_ids = [result.parent_run_id, *run_ids.values()]
        with self._ending_all_on_failure():
            comparison = self._finishing.finish_variants(run_ids, status)
            return comparison, self._finishing.report_data()

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
        with self._ending_all_on_failure():
            finishing.finish_parent(comparison, status, journal_dir, report_dir)
        return finishing.result.problems

    @contextlib.contextmanager
    def _ending_all_on_failure(self) -> Iterator[None]:
        """If the finishing fails, every run still ends (as FAILED), never left RUNNING."""
        try:
            yield
        except BaseException:
            self.store.end_runs(self._run_ids, "FAILED")
            raise

    def register(self, loaded: Any, plan: Any, register_all: bool, comparison: Any) -> Registration:
        from ..registry.registration import register_and_promote

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
