"""The run's MLflow store as the process that sends the calls sees it: each method is done by
the trace writer's child (writer_process.StoreTasks), so this process never imports MLflow.

Why: MLflow's import and store cost seconds of CPU and over 100 MB per process. When both the
calls' process and the trace writer imported it, a run paid that twice, the two competed for a
2-core machine's CPU during the start, and their memory added up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import LoadedExperiment
    from ..plan import Plan, Variant
    from ..registry.registration import Registration
    from ..report import Comparison
    from ..report.data import ReportData
    from ..run_types import RunResult
    from ..scoring.judge import Judged
    from ..types import CallRecord
    from .trace_writer import TraceWriter


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
