"""The one door the session uses: which variants are batched, and their calls sent through
their providers' batch APIs (runner.py), the journal's jobs collected first."""

from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..plan import Call, Variant
from ..pricing import Pricer
from ..providers.batch_api import BATCH_ADAPTERS
from ..types import CallRecord
from .ledger import read_jobs
from .runner import BatchRunner


def batched_ids(variants: Iterable[Variant]) -> set[str]:
    return {v.id for v in variants if v.entry.batch is not None}


def judge_batch_id(judge: Variant) -> str:
    """What a batched judge's jobs are journaled under: its entry, less the settings that do
    not reach a batch job (a poll interval changed before `--resume` still finds its jobs). A
    judge variant's own id numbers the judges in the order the answers came, which a resumed
    run need not repeat."""
    ignored = {"batch", "timeout_s", "max_retries", "max_concurrency"}
    entry = judge.entry.model_dump_json(exclude=ignored)
    digest = hashlib.sha256(entry.encode()).hexdigest()[:8]
    return f"judge:{judge.entry.model_name}#{digest}"  # in progress lines too


def batch_api(provider: Any) -> Any:
    """The batch API beside an opened provider (the same client, key and base URL); its module
    is imported only now, as a provider's adapter is."""
    module_name, _, class_name = BATCH_ADAPTERS[provider.name].partition(":")
    return getattr(importlib.import_module(module_name), class_name).of(provider)


async def send_batched(
    calls: list[Call],
    providers: Mapping[str, Any],
    pricers: Mapping[str, Pricer],
    journal: Any,  # journal.Journal
    on_record: Callable[[CallRecord], None],
    runner: Any,  # the live calls' runner.Runner: its budget and pace are shared
    hooks: Any,  # run_types.RunHooks: batch_progress(line), when it has it
    detach: bool = False,
) -> tuple[int, int]:
    """Send these calls of batched variants, or collect the jobs the journal names; the jobs
    left running (with `detach`) and their calls."""
    variants = {c.variant.id: c.variant for c in calls}
    jobs = read_jobs(Path(journal.path))
    settings = {vid: v.entry.batch for vid, v in variants.items() if v.entry.batch is not None}
    if not settings:  # every batched call is in (a job's calls all journaled count as done)
        return 0, 0
    runner = BatchRunner(
        apis={vid: batch_api(providers[vid]) for vid in settings if vid in providers},
        pricers=pricers,
        poll_s={vid: batch.poll_s for vid, batch in settings.items()},
        max_requests={vid: batch.max_requests for vid, batch in settings.items()},
        journal_line=journal.append_batch,
        on_record=on_record,
        budget=runner.budget,
        pace=runner.pace,
        progress=getattr(hooks, "batch_progress", None) or _to_stderr,
    )
    await runner.run(calls, jobs, detach=detach)
    return runner.detached, runner.detached_calls


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
