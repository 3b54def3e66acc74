"""A run's batch jobs as `llmflow batches` lists and cancels them: what the run's journal says
of each (ledger.py), and what the provider says when asked, once.

The provider is reached as the run reached it: the experiment file the journal names gives each
variant's provider, its base URL and the environment variable of its key. A file that is gone,
a key that is not set or a provider that does not answer leaves the journal's word alone, with
the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import load_experiment
from ..config.environment import resolve_connection
from ..errors import ConfigError, LlmflowError
from ..journal import JOURNAL_DIR, Journal, JournalHeader, journal_of, read_header
from ..plan import Variant, build_plan, settings_of
from ..providers import create_provider
from ..record_lines import journal_lines
from ..redact import redact_text
from .hook import batch_api, judge_batch_id
from .ledger import SUBMITTING, Job, read_jobs

# what the journal says of a job
NOT_CREATED, SUBMITTED, COLLECTED, CANCELLED = "not created", "submitted", "collected", "cancelled"


@dataclass(frozen=True)
class JobRow:
    """One job: the journal's word, and the provider's when it was asked."""

    label: str  # llmflow's name for it, kept by the provider (OpenAI metadata, display name)
    job_id: str | None
    variant_id: str
    requests: int
    created_s: float | None
    journaled: str  # NOT_CREATED, SUBMITTED, COLLECTED or CANCELLED
    provider: str | None = None  # None: the variant is not in the experiment file now
    state: str | None = None  # the provider's own word, when asked
    done: int | None = None
    total: int | None = None
    unknown: str | None = None  # why the provider's state is unknown

    @property
    def open(self) -> bool:
        """Not collected yet: `--resume` collects it (or sends its calls, never created)."""
        return self.journaled in (NOT_CREATED, SUBMITTED, CANCELLED)


@dataclass(frozen=True)
class RunJobs:
    header: JournalHeader
    journal: Path
    jobs: list[JobRow]


def run_journal(prefix: str | None, directory: Path | None = None) -> Path:
    """The journal of the run whose id starts with `prefix`; None: the newest run with batch
    jobs. LlmflowError, in one line, when there is none."""
    if prefix is not None:
        return journal_of(prefix, directory)
    found = journals_with_jobs(directory)
    if not found:
        raise LlmflowError(
            f"no run in {directory or JOURNAL_DIR} has batch jobs: run this where `llmflow run` "
            "ran a model with `batch:`, or name the run"
        )
    return found[0]


def journals_with_jobs(
    directory: Path | None = None, experiment_id: str | None = None
) -> list[Path]:
    """The journals (newest first) whose run submitted batch jobs; in one experiment, if given."""
    journals = (directory or JOURNAL_DIR).glob("*.jsonl")
    found = []
    for path in sorted(journals, key=lambda p: p.stat().st_mtime, reverse=True):
        header = read_header(path)
        if header is None or (experiment_id is not None and header.experiment_id != experiment_id):
            continue
        if any(f'"type": "{SUBMITTING}"' in line for line in journal_lines(path)):
            found.append(path)
    return found


def list_jobs(journal: Path, ask_provider: bool = True) -> RunJobs:
    """The jobs of a run, each open one's state asked of its provider once (unless not)."""
    header, jobs = _read(journal)
    rows = [_row(job) for job in jobs]
    providers = _providers(header, rows)
    if ask_provider:
        rows = asyncio.run(_ask(rows, providers, _poll))
    else:
        rows = [replace(r, unknown="not asked (--offline)") if r.open else r for r in rows]
    return RunJobs(header, journal, rows)


def cancel_jobs(journal: Path) -> RunJobs:
    """Cancel the run's jobs not collected yet at their providers, each cancel journaled; the
    rows say what became of each (`unknown`: why it could not be cancelled)."""
    header, jobs = _read(journal)
    rows = [_row(job) for job in jobs]
    providers = _providers(header, rows)
    out = Journal(journal)
    try:
        by_label = {job.label: job for job in jobs}
        rows = asyncio.run(_ask(rows, providers, _cancel(by_label, out.append_batch)))
    finally:
        out.close()
    return RunJobs(header, journal, rows)


def _read(journal: Path) -> tuple[JournalHeader, list[Job]]:
    header = read_header(journal)
    if header is None:
        raise ConfigError(f"{journal}: not a journal (no header line)")
    jobs = read_jobs(journal)
    if not jobs:
        raise LlmflowError(f"run {header.parent_run_id} has no batch jobs ({journal})")
    return header, jobs


def _row(job: Job) -> JobRow:
    if job.collected:
        journaled = COLLECTED
    elif job.cancelled:
        journaled = CANCELLED
    else:
        journaled = SUBMITTED if job.job_id else NOT_CREATED
    return JobRow(job.label, job.job_id, job.variant_id, len(job.keys), job.created_s, journaled)


def _providers(header: JournalHeader, rows: list[JobRow]) -> dict[str, Any] | str:
    """Each variant's entry in the experiment file the journal names; or why there is none."""
    if header.config_path is None:
        return "the journal names no experiment file (written before llmflow kept it)"
    try:  # the models alone: the prompts are not needed (nor read) to reach a provider
        loaded = load_experiment(header.config_path, stored_prompts=())
        plan = build_plan(loaded)
    except LlmflowError as e:
        return redact_text(str(e))
    variants = {v.id: v for v in plan.variants}
    for spec in loaded.config.scorers or ():  # a batched judge's jobs, under their own ids
        if spec.type == "judge" and spec.batch is not None:
            entry = spec.judge_entry()
            judge = Variant(f"judge:{spec.label}", entry, settings_of(entry))
            variants[judge_batch_id(judge)] = judge
    return variants


Action = Callable[[Any, JobRow], Any]  # (batch API, row) -> the row after it (a coroutine)


async def _ask(rows: list[JobRow], variants: dict[str, Any] | str, action: Action) -> list[JobRow]:
    """`action` on each open job, through its variant's provider, opened once per variant."""
    apis: dict[str, Any] = {}
    opened: list[Any] = []
    result = []
    try:
        for row in rows:
            variant = variants.get(row.variant_id) if isinstance(variants, dict) else None
            if variant is not None:
                row = replace(row, provider=variant.provider)
            if not row.open:
                result.append(row)
                continue
            if variant is None:
                why = variants if isinstance(variants, str) else "its model is not in the file now"
                result.append(replace(row, unknown=why))
                continue
            try:
                if row.variant_id not in apis:
                    provider = _open(variant)
                    opened.append(provider)
                    apis[row.variant_id] = batch_api(provider)
                result.append(await action(apis[row.variant_id], row))
            except LlmflowError as e:  # ProviderError, MissingCredentials, ConfigError
                result.append(replace(row, unknown=redact_text(f"{type(e).__name__}: {e}")))
    finally:
        await asyncio.gather(*(p.aclose() for p in opened), return_exceptions=True)
    return result


def _open(variant: Any) -> Any:
    connection = resolve_connection(variant.entry)
    return create_provider(variant.provider, **variant.entry.provider_options(connection))


async def _poll(api: Any, row: JobRow) -> JobRow:
    job_id = row.job_id or await api.find(row.label)
    if job_id is None:
        return replace(row, unknown="never created: --resume sends its calls")
    state = await api.state(job_id)
    return replace(row, job_id=job_id, state=state.state, done=state.done, total=state.total)


def _cancel(jobs: dict[str, Job], journal_line: Callable[[dict], None]) -> Action:
    async def cancel(api: Any, row: JobRow) -> JobRow:
        job = jobs[row.label]
        if job.job_id is None:
            job.job_id = await api.find(job.label)
            if job.job_id is None:
                return replace(row, unknown="never created: --resume sends its calls")
            journal_line(job.submitted_line())  # created by a process killed before it said so
        if job.cancelled:
            return replace(row, job_id=job.job_id)
        await api.cancel(job.job_id)
        journal_line(job.cancelled_line())
        return replace(row, job_id=job.job_id, journaled=CANCELLED)

    return cancel


def open_count(rows: Iterable[JobRow]) -> int:
    return sum(1 for row in rows if row.open)
