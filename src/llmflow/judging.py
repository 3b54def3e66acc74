"""Running the judges: every judge question of the graded calls asked through the runner
(retries, timeout, budget; streaming off), each answer journalled the moment it ends. A judge
with `batch:` is asked through its provider's batch API instead (llmflow.batch), its jobs
journaled in the run's journal as a batched model's are. What a judge is asked and what its
answer means is scoring/judge.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from .batch.hook import judge_batch_id, send_batched
from .config.environment import resolve_connection
from .errors import MissingCredentials
from .judge_journal import answered
from .plan import Call, Variant
from .pricing import Pricer
from .providers import create_provider
from .runner import Runner
from .scoring.judge import Judged, assemble, job_call, journal_entry, plan_jobs
from .scoring.scores import CaseChecks
from .types import CallRecord


async def judge_records(
    records: Mapping[str, Sequence[CallRecord]],
    table: Mapping[str, CaseChecks],
    *,
    concurrency: int,
    retry: Any = None,
    budget: Any = None,
    config_name: str = "the experiment file",
    known: Sequence[Any] = (),
    on_judged: Callable[[Any], None] | None = None,
    journal: Any = None,
    hooks: Any = None,
    detach: bool = False,
) -> Judged:
    """Grade every successful measured call with its case's judges, through the runner. A
    question a judge answered already (`known`: judge_journal.JudgeEntry) is not asked again;
    each call made is handed to `on_judged` as a JudgeEntry the moment it ends (to journal it).

    A batched judge's questions go in batch jobs journaled in `journal` (journal.Journal), its
    earlier jobs there collected first; `hooks.batch_progress` hears of them; with `detach`,
    its jobs are left running (`Judged.batch_jobs_left` and `batch_calls_left`). Without a
    journal (`llmflow score`) a batched judge is asked live."""
    jobs, variants = plan_jobs(records, table)
    done = answered(known)
    pending = [job for job in jobs.values() if job.graded not in done]
    providers, unavailable = _open_judges({job.judge.id: job.judge for job in pending}, config_name)
    made: list[Any] = []

    def on_record(judge_call: CallRecord) -> None:
        entry = journal_entry(jobs, judge_call)
        if on_judged is not None:
            on_judged(entry)  # first: a paid verdict is safe before anything else
        made.append(entry)

    calls = [job_call(job) for job in pending if job.judge.id in providers]
    in_batch = journal is not None  # else nowhere to journal a job before waiting for it
    live = [c for c in calls if not (in_batch and c.variant.entry.batch is not None)]
    batched = [c for c in calls if in_batch and c.variant.entry.batch is not None]
    pricers = {v.id: Pricer(v.entry) for v in variants.values()}
    try:
        runner = Runner(
            providers,
            pricers,
            concurrency=concurrency,
            on_record=on_record,
            retry=retry,
            budget=budget,
        )
        left = (0, 0)
        if batched:
            sent = _send_batched(
                batched, providers, pricers, journal, on_record, runner, hooks, detach
            )
            _, left = await asyncio.gather(runner.run(live), sent)
        else:
            await runner.run(live)
    finally:
        await asyncio.gather(*(p.aclose() for p in providers.values()), return_exceptions=True)
    judged = assemble(jobs, [*known, *made], unavailable)
    judged.n_calls = len(made)
    judged.batch_jobs_left, judged.batch_calls_left = left
    return judged


async def _send_batched(
    calls: Sequence[Call],
    providers: Mapping[str, Any],
    pricers: Mapping[str, Pricer],
    journal: Any,
    on_record: Callable[[CallRecord], None],
    runner: Runner,
    hooks: Any,
    detach: bool,
) -> tuple[int, int]:
    """The batched judges' calls through their providers' batch APIs, after the journal's jobs
    of them (llmflow.batch, as a batched model's): the jobs left running, and their calls."""
    judges = _BatchedJudges(calls, providers, pricers)
    back = judges.back(on_record)
    return await send_batched(
        judges.calls, judges.providers, judges.pricers, journal, back, runner, hooks, detach
    )


class _BatchedJudges:
    """Batched judges' calls under ids that stay the same in a resumed run, for their jobs'
    journal lines: a judge variant's own id numbers the judges in the order the answers came,
    which a resumed run need not repeat."""

    def __init__(
        self, calls: Sequence[Call], providers: Mapping[str, Any], pricers: Mapping[str, Pricer]
    ) -> None:
        self._own_id: dict[str, str] = {}
        renamed: dict[str, Variant] = {}
        for call in calls:
            judge = call.variant
            if judge.id not in renamed:
                renamed[judge.id] = replace(judge, id=judge_batch_id(judge))
                self._own_id[renamed[judge.id].id] = judge.id
        self.calls = [replace(c, variant=renamed[c.variant.id]) for c in calls]
        self.providers = {renamed[k].id: p for k, p in providers.items() if k in renamed}
        self.pricers = {renamed[k].id: p for k, p in pricers.items() if k in renamed}

    def back(self, on_record: Callable[[CallRecord], None]) -> Callable[[CallRecord], None]:
        """`on_record` for the batched calls, each record under its judge's own id again."""
        return lambda record: on_record(replace(record, variant_id=self._own_id[record.variant_id]))


def _open_judges(
    judges: Mapping[str, Any], config_name: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """A provider per judge; a judge without its key makes its checks errors, not a crash."""
    providers, unavailable = {}, {}
    for judge in judges.values():
        try:
            connection = resolve_connection(judge.entry, config_name)
            providers[judge.id] = create_provider(
                judge.provider, **judge.entry.provider_options(connection)
            )
        except MissingCredentials as e:
            unavailable[judge.id] = f"judge unavailable: {e}"
    return providers, unavailable
