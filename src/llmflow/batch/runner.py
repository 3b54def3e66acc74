"""Runs the calls of batched variants: split into jobs within the provider's limits, each job
journaled before it is sent and again once it exists, polled, and its answers handed over as
CallRecords like any other call's.

A batched call has no latency: its record's timing is None (never 0, never the job's
duration); it carries its job and the job's wall time instead. A request that errored or
expired in its job is a failed call with the provider's reason, which `--resume` sends again
(resume.py); a job that failed validation fails its calls with the provider's message.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

from ..budget import Budget, Reservation, worst_case_usd
from ..errors import BudgetExhausted, ProviderError
from ..plan import Call
from ..pricing import Pricer
from ..providers.batch_api import Answer, BatchAPI, JobState
from ..redact import redact_text
from ..runner import _record
from ..types import CallRecord, Completion, Usage
from .ledger import Job
from .pricing import batch_cost, discount_of
from .resume import EXPIRED, JOB_FAILED, NOT_SUBMITTED, REQUEST_FAILED

CallKey = tuple[str, str, int]  # variant id, case id, repeat
READ_TRIES = 5


@dataclass
class _Active:
    job: Job
    api: BatchAPI
    reservation: Reservation | None
    state: JobState | None = None
    polled: float = 0.0
    said: str = ""
    failed_reads: int = 0  # results that could not be read, in a row

    @property
    def job_id(self) -> str:
        assert self.job.job_id is not None, "only a job that exists is waited for"
        return self.job.job_id


@dataclass
class BatchRunner:
    apis: Mapping[str, BatchAPI]  # variant id -> its provider's batch API
    pricers: Mapping[str, Pricer]
    poll_s: Mapping[str, float]  # variant id -> seconds between polls of its jobs
    max_requests: Mapping[str, int | None]
    journal_line: Callable[[dict], None]  # appends a line to the run's journal
    on_record: Callable[[CallRecord], None]
    budget: Budget | None = None
    # awaited before each answer is handed over: a job's 50,000 answers, handed over at once,
    # would all wait in the worker for their traces
    pace: Callable[[], Awaitable[None]] | None = None
    progress: Callable[[str], None] = lambda line: None
    clock: Callable[[], float] = time.time
    detached: int = 0  # jobs left running by --detach
    detached_calls: int = 0  # their calls
    _active: list[_Active] = field(default_factory=list)

    async def run(self, calls: Iterable[Call], jobs: Iterable[Job], detach: bool = False) -> None:
        """Collect the journal's unfinished jobs and send the other calls in new ones; with
        `detach`, return once every job exists."""
        by_key = {(c.variant.id, c.case.id, c.repeat): c for c in calls}
        held: set[CallKey] = set()
        for job in jobs:
            if job.collected or job.variant_id not in self.apis:
                continue
            api = self.apis[job.variant_id]
            if job.job_id is None:
                job.job_id = await api.find(job.label)
                if job.job_id is not None:  # created by a process killed before it said so
                    self.journal_line(job.submitted_line())
            if job.job_id is not None:
                held.update((job.variant_id, *key) for key in job.keys)
                self._active.append(_Active(job, api, None))
        for variant_id, chunk in self._chunks(c for k, c in by_key.items() if k not in held):
            await self._submit(variant_id, chunk)
        if detach:
            self.detached = len(self._active)
            self.detached_calls = sum(len(a.job.keys) for a in self._active)
            return
        await self._wait(by_key)

    def _chunks(self, calls: Iterable[Call]) -> Iterable[tuple[str, list[tuple[Call, bytes]]]]:
        """Each variant's calls in jobs of at most max_requests and max_bytes."""
        grouped: dict[str, list[Call]] = {}
        for call in calls:
            grouped.setdefault(call.variant.id, []).append(call)
        for variant_id, group in grouped.items():
            api = self.apis[variant_id]
            limit = min(api.max_requests, self.max_requests.get(variant_id) or api.max_requests)
            chunk: list[tuple[Call, bytes]] = []
            size = 0
            for call in group:
                line = api.request(str(len(chunk)), call.case.messages, call.variant.settings)
                if chunk and (len(chunk) == limit or size + len(line) > api.max_bytes):
                    yield variant_id, chunk
                    chunk, size = [], 0
                    line = api.request("0", call.case.messages, call.variant.settings)
                chunk.append((call, line))
                size += len(line)
            if chunk:
                yield variant_id, chunk

    async def _submit(self, variant_id: str, chunk: list[tuple[Call, bytes]]) -> None:
        calls = [call for call, _ in chunk]
        reservation = self._reserve(variant_id, calls)
        if reservation is False:
            assert self.budget is not None  # only a budget refuses
            spent = f"${self.budget.spent_usd:.4f} of ${self.budget.limit_usd:g} spent"
            self._fail(calls, BudgetExhausted.__name__, f"not sent: {spent}", attempts=0)
            return
        keys = [(c.case.id, c.repeat) for c in calls]
        job = Job(uuid.uuid4().hex, variant_id, keys, created_s=self.clock())
        self.journal_line(job.submitting_line())  # first: a kill now leaves a job to look for
        api = self.apis[variant_id]
        try:
            job.job_id = await api.submit([line for _, line in chunk], job.label)
        except ProviderError as e:
            self._settle(reservation, None)
            self._fail(calls, NOT_SUBMITTED, f"batch job not created: {e}", attempts=1)
            return
        self.journal_line(job.submitted_line())  # before it is waited for
        self.progress(f"{api.provider} {variant_id}: job {job.job_id} created ({len(calls)} calls)")
        self._active.append(_Active(job, api, reservation))

    def _reserve(self, variant_id: str, calls: list[Call]) -> Reservation | None | Literal[False]:
        """The job's worst case at the batch price, or False when the budget refuses it."""
        if self.budget is None:
            return None
        pricer = self.pricers[variant_id]
        worst = sum(worst_case_usd(c, pricer) for c in calls) * discount_of(pricer)
        return self.budget.reserve(worst) or False

    def _settle(self, reservation: Reservation | None, actual: float | None) -> None:
        if self.budget is not None and isinstance(reservation, Reservation):
            self.budget.settle(reservation, actual)

    async def _wait(self, by_key: Mapping[CallKey, Call]) -> None:
        """Poll every job at its variant's pace, collect each as it ends."""
        while self._active:
            now = self.clock()
            for active in list(self._active):
                if now - active.polled < self.poll_s[active.job.variant_id]:
                    continue
                active.polled = now
                await self._poll(active, by_key)
                self._say(active, now)
            if self._active:
                await asyncio.sleep(min(self.poll_s[a.job.variant_id] for a in self._active) / 4)

    async def _poll(self, active: _Active, by_key: Mapping[CallKey, Call]) -> None:
        """One look at a job; an ended one is collected. A poll that failed is tried again at
        the next; results unreadable READ_TRIES times in a row fail the job's calls."""
        try:
            active.state = await active.api.state(active.job_id)
        except ProviderError as e:
            self.progress(f"job {active.job.job_id}: {redact_text(str(e))[:200]}")
            return
        if not active.state.ended:
            return
        try:
            answers = await self._answers(active)
        except ProviderError as e:
            active.failed_reads += 1
            self.progress(f"job {active.job.job_id}: results: {redact_text(str(e))[:200]}")
            if active.failed_reads < READ_TRIES:
                return
            failure = f"results unreadable: {e}"
            active.state = replace(active.state, failure=failure)
            answers = {}
        await self._collect(active, answers, by_key)
        self._active.remove(active)

    async def _answers(self, active: _Active) -> dict[str, Answer]:
        if active.state is None or active.state.failure:
            return {}
        return {a.key: a for a in await active.api.answers(active.job_id)}

    def _say(self, active: _Active, now: float) -> None:
        state = active.state
        if state is None:
            return
        counts = f" {state.done}/{state.total}" if state.total is not None else ""
        job = active.job
        line = f"{active.api.provider} {job.variant_id}: job {job.job_id} {state.state}{counts}"
        if line != active.said:
            active.said = line
            elapsed = now - (active.job.created_s or now)
            self.progress(f"{line}, {elapsed:.0f}s")

    async def _collect(
        self, active: _Active, answers: Mapping[str, Answer], by_key: Mapping[CallKey, Call]
    ) -> None:
        job, state = active.job, active.state
        assert state is not None
        wall_s = max(0.0, self.clock() - job.created_s) if job.created_s else None
        spent: list[float | None] = []  # None: unpriced
        for index, (case_id, repeat) in enumerate(job.keys):
            call = by_key.get((job.variant_id, case_id, repeat))
            if call is None:  # journaled already, before a kill
                continue
            if self.pace is not None:
                await self.pace()
            record = self._record(call, answers.get(str(index)), state, job, wall_s)
            spent.append(record.cost.usd if record.cost else 0.0)
            self.on_record(record)
        known = [usd for usd in spent if usd is not None]
        self._settle(active.reservation, sum(known) if len(known) == len(spent) else None)
        self.journal_line(job.collected_line())

    def _record(
        self, call: Call, answer: Answer | None, state: JobState, job: Job, wall_s: float | None
    ) -> CallRecord:
        batch = {"batch_job": job.job_id, "batch_wall_s": wall_s}
        message: str | None
        if answer is None or answer.delta is None:
            if state.failure:
                kind, message = JOB_FAILED, f"batch job failed: {state.failure}"
            elif answer is not None:
                kind, message = (EXPIRED if answer.expired else REQUEST_FAILED), answer.error
            else:
                kind, message = EXPIRED, f"no result: the job ended {state.state}"
            if kind == EXPIRED and job.cancelled:
                message = f"not run: `llmflow batches cancel` cancelled its job ({message})"
            return _record(
                call, error_type=kind, error_message=redact_text(message or "")[:500], **batch
            )
        delta = answer.delta
        usage = delta.usage or Usage()  # no usage reported: tokens unknown, unpriced
        completion = Completion(delta.text, usage, delta.finish_reason, delta.model_version)
        cost = batch_cost(self.pricers[call.variant.id], completion.usage, answer.service_tier)
        return _record(call, completion=completion, cost=cost, **batch)

    def _fail(self, calls: list[Call], kind: str, message: str, attempts: int) -> None:
        for call in calls:
            self.on_record(_record(call, error_type=kind, error_message=message, attempts=attempts))

    async def cancel_all(self) -> None:
        for active in self._active:
            await active.api.cancel(active.job_id)
