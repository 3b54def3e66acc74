"""Running the judges: every judge question of the graded calls asked through the runner
(retries, timeout, budget; streaming off), each answer journalled the moment it ends. What a
judge is asked and what its answer means is scoring/judge.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .config.environment import resolve_connection
from .errors import MissingCredentials
from .judge_journal import answered
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
) -> Judged:
    """Grade every successful measured call with its case's judges, through the runner. A
    question a judge answered already (`known`: judge_journal.JudgeEntry) is not asked again;
    each call made is handed to `on_judged` as a JudgeEntry the moment it ends (to journal it)."""
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
        await runner.run(calls)
    finally:
        await asyncio.gather(*(p.aclose() for p in providers.values()), return_exceptions=True)
    judged = assemble(jobs, [*known, *made], unavailable)
    judged.n_calls = len(made)
    return judged


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
