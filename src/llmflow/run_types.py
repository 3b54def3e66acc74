"""What `run_experiment` takes and gives back: the request, the result, and progress hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .journal import read_journal
from .plan import Variant
from .runner import RetryPolicy
from .types import CallRecord

if TYPE_CHECKING:
    from .report import Comparison

LATEST = "latest"  # --resume without a run id: the latest unfinished run of the file


@dataclass(frozen=True)
class RunRequest:
    """What `llmflow run` asks for."""

    experiment_file: Path
    tracking_uri: str | None = None
    register_all: bool = False  # register every variant, not only those with register_as
    use_cache: bool | None = None  # True/False override the file's `cache:` (off by default)
    max_cost_usd: float | None = None  # overrides the file's max_cost_usd
    resume: str | None = None  # a parent run id, or LATEST
    journal_dir: Path | None = None  # default .llmflow/journals in the working directory
    report_dir: Path | None = None  # also write the report here (it always goes into MLflow)
    detach: bool = False  # submit the batch jobs and return (llmflow.batch)
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True)
class Skipped:
    variant: Variant
    reason: str


@dataclass
class RunResult:
    experiment_name: str
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    skipped: list[Skipped]
    # counted as the calls finish: the records themselves are in the journal and the worker
    # (a 100,000-call run keeps none of them here)
    n_calls: int = 0
    n_failed_calls: int = 0
    n_cached_calls: int = 0
    journal: Path | None = None  # where every call of the run is journaled (`records` reads it)
    resumed_calls: int = 0
    traces_written: int = 0
    traces_failed: int = 0
    traces_failure: str | None = None  # why the first trace that failed did
    status: str = "RUNNING"  # what the runs were ended as: FINISHED, KILLED or FAILED
    comparison: Comparison | None = None
    registered: list[str] = field(default_factory=list)  # "name v3 (variant)"
    registry_notes: list[str] = field(default_factory=list)  # versions kept, aliases moved, ties
    problems: list[str] = field(default_factory=list)  # registration/policy trouble, one line each
    headline: list[str] = field(default_factory=list)  # the report's first findings, plain text
    report_stored: bool = False  # the report is in the parent run's artifacts (report/)
    judge_failures: list[str] = field(default_factory=list)  # a judge call failed: why, each
    batch_jobs_left: int = 0  # batch jobs left running at the provider (--detach)
    batch_calls_left: int = 0  # their calls
    unjudged: int = 0  # answers still waiting for a judge's verdict (judging was stopped)

    @property
    def n_empty_answers(self) -> int:
        """Blank answers among the measured calls (the variants' n_empty, summed)."""
        rows = self.comparison.rows if self.comparison is not None else ()
        return sum(row.n_empty for row in rows)

    @property
    def records(self) -> dict[str, list[CallRecord]]:
        """Every call's CallRecord (resumed ones and warmups too), by variant id, in the order
        they finished: read from the run's journal at each access, since the run itself keeps
        none (a 100,000-call run would hold them twice)."""
        by_variant: dict[str, list[CallRecord]] = {}
        if self.journal is None or not self.journal.exists():
            return by_variant
        for record in read_journal(self.journal)[1]:
            by_variant.setdefault(record.variant_id, []).append(record)
        return by_variant

    def count(self, record: CallRecord) -> None:
        """One more call finished (or resumed from the journal)."""
        self.n_calls += 1
        self.n_failed_calls += not record.ok
        self.n_cached_calls += record.cached

    @property
    def exit_code(self) -> int:
        """0 when every call succeeded, was judged and traced; 1 when a call or a judge's call
        failed, a variant was skipped or a trace could not be written."""
        failed = self.n_failed_calls or self.skipped or self.traces_failed
        return 1 if failed or self.judge_failures or self.unjudged else 0


class RunHooks:
    """Progress callbacks; the CLI draws a progress bar with them. All optional."""

    def started(self, total_calls: int) -> None: ...

    def call_finished(self, record: CallRecord) -> None: ...

    def variant_skipped(self, skipped: Skipped) -> None: ...
