"""One `llmflow run` once its file is read and its plan built (experiment.run_experiment): the
worker (worker/) started beside the providers' opening, the runs opened or resumed, the calls
sent, judged and journaled, then every run finished, whatever stopped it.

Every finished call goes to the journal first, then to the worker (which traces it and keeps it,
on disk, for the finish) and the progress bar. This process keeps counts and the money spent, not
the records (a 100,000-call run would hold them all twice), except for the judges, who read
every answer once the calls are in. Whatever happens (failure, Ctrl-C),
the MLflow runs are finished with what was collected; after a kill -9, `--resume` continues
them from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import tempfile
import threading
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from ._process import gc_paused
from .batch.hook import batched_ids, send_batched
from .batch.resume import for_resume, resendable
from .budget import Budget
from .cache import ResponseCache
from .config import LoadedExperiment
from .errors import RunFailed, ServerGone, VariantBroken
from .journal import Journal, JournalHeader, Resumed, journal_path
from .plan import Plan
from .pricing import Pricer
from .prompt_set import write_prompt_set
from .provider_opening import check_judges, close_all, distinct, open_providers
from .providers import Provider
from .run_types import RunHooks, RunRequest, RunResult, Skipped
from .runner import Runner
from .scoring import case_table, check_types
from .scoring.judge import has_judges, judged_so_far
from .stopping import StopSignals, abandon
from .tracking.uri import resolve_tracking_uri
from .types import CallRecord
from .worker.protocol import (
    BeginCalls,
    CheckResumable,
    EndRuns,
    ExperimentId,
    FinishRun,
    OpenRuns,
    OpenStore,
    Reopen,
    Resume,
)

if TYPE_CHECKING:
    from .judge_journal import JudgeEntry
    from .scoring.judge import Judged
    from .worker.client import WorkerClient


def _start_worker(
    tracking_uri: str, check_kinds: set[str], report: bool = False
) -> tuple[WorkerClient, str]:
    """The worker, with the store open in it (it imports MLflow: seconds); the store's URI as
    MLflow resolved it."""
    from .worker.client import WorkerClient

    worker = WorkerClient(tracking_uri, check_kinds, report)
    try:
        return worker, worker.ask(OpenStore(tracking_uri))
    except BaseException:
        worker.close()
        raise


def without_prompts(loaded: LoadedExperiment, plan: Plan) -> tuple[LoadedExperiment, Plan]:
    """The experiment as the worker is told of it for the calls and the registration: without
    its prompts and cases (the calls carry theirs; the checks table says how each case is
    checked). 100,000 prompts, pickled and held again there, cost the worker some 200 MB."""
    return dataclasses.replace(loaded, prompts=()), dataclasses.replace(plan, cases=())


# calls finished whose traces the worker has not written yet, at most: a store slower than the
# calls (a loaded machine, a remote server) holds the calls back, not every record in memory
MAX_WAITING = 2_000


async def _pace(worker: WorkerClient) -> None:
    while worker.waiting > MAX_WAITING:
        await asyncio.sleep(0.02)


class Session:
    """One `llmflow run`: the state shared by the async part and the cleanup."""

    worker: WorkerClient  # started by run(), alongside the providers
    tracking_uri: str  # the store's, as the worker opened it

    def __init__(
        self,
        loaded: LoadedExperiment,
        plan: Plan,
        pricers: dict[str, Pricer],
        request: RunRequest,
        hooks: RunHooks,
        limit: float | None,
        cache: ResponseCache | None,
    ) -> None:
        self.loaded, self.plan, self.pricers = loaded, plan, pricers
        self._cache = cache
        self.request, self.hooks, self.limit = request, hooks, limit
        self.parent_run_id: str | None = None
        self._run_ids: dict[str, str] = {}
        self._signals: StopSignals | None = None
        self._worker: WorkerClient | None = None
        self._lock = threading.Lock()
        self.judged: Judged | None = None  # the judges' scores, once the calls are in
        self.providers: dict[str, Provider] = {}  # once opened: a trained model is logged
        self.checks = case_table(loaded)  # what each case is checked with; None: no checks
        self._judge_entries: list[JudgeEntry] = []  # every judge call journaled, resumed ones too
        self._spent_usd = 0.0  # what the calls cost so far, resumed ones included (the budget)
        # the answers, by variant id, only when a judge will read them
        self._kept: defaultdict[str, list[CallRecord]] | None = None
        if self.checks is not None:
            self._kept = defaultdict(list) if has_judges(self.checks) else None

    @property
    def stop_signal(self) -> str | None:
        """The name of the stop signal received (SIGINT, SIGTERM, SIGHUP), if any."""
        return self._signals.received if self._signals else None

    async def run(self, resumed: Resumed | None) -> RunResult:
        # starting the worker and opening the store in it (imports, migrations: seconds)
        # overlap opening the providers; both finish before the first call is sent
        uri = resolve_tracking_uri(self.request.tracking_uri)
        check_kinds, report = check_types(self.checks), bool(self.loaded.config.report)
        starting = asyncio.ensure_future(asyncio.to_thread(_start_worker, uri, check_kinds, report))
        await asyncio.sleep(0)  # its thread starts now, not after the providers' SDK imports
        providers: dict[str, Provider] = {}
        with StopSignals(self._abandon) as self._signals:
            # before the runs exist, a stop signal simply ends the start-up
            self._signals.cancels(asyncio.current_task().cancel)
            try:
                # the imports of MLflow, its store and the providers' SDKs happen here; so do
                # the providers' checks and the store's, each bounded by its timeout
                with gc_paused():
                    providers, skipped = await open_providers(self.plan, self.loaded)
                    await check_judges(self.loaded)
                    self.providers = providers
                    self.worker, self.tracking_uri = await starting
                    self._worker = self.worker
                return await self._run(resumed, providers, skipped, self.worker)
            finally:
                # whatever failed, the worker is kept for close_worker() (the registration
                # still needs it when all went well)
                (started,) = await asyncio.gather(starting, return_exceptions=True)
                if isinstance(started, tuple):
                    self.worker, self.tracking_uri = started
                    self._worker = self.worker
                await close_all(distinct(providers))

    def close_worker(self) -> None:
        """End this run in the worker (a no-op once closed or abandoned)."""
        if self._worker is not None:
            self._worker.close()

    def abandon_worker(self) -> None:
        if self._worker is not None:
            self._worker.abandon()

    async def _run(
        self,
        resumed: Resumed | None,
        providers: dict[str, Provider],
        skipped: list[Skipped],
        worker: WorkerClient,
    ) -> RunResult:
        for s in skipped:
            self.hooks.variant_skipped(s)
        experiment = self.loaded.config.experiment
        experiment_id = worker.ask(ExperimentId(experiment))
        if resumed is not None and not resendable(resumed, batched_ids(self.plan.variants)):
            worker.ask(CheckResumable(resumed.header.parent_run_id, experiment))
        # from here on the runs exist: a signal stops the calls, never the cleanup below
        parent_id, run_ids = self._open_runs(experiment_id, resumed)
        self.parent_run_id, self._run_ids = parent_id, run_ids
        loaded, plan = without_prompts(self.loaded, self.plan)
        worker.begin(BeginCalls(experiment_id, parent_id, loaded, plan, self.checks))
        result = RunResult(
            experiment_name=experiment,
            experiment_id=experiment_id,
            parent_run_id=parent_id,
            tracking_uri=self.tracking_uri,
            skipped=skipped,
        )
        status, failure = "FAILED", None
        journal: Journal | None = None
        calls: asyncio.Future[None] | None = None
        try:
            journal = self._open_journal(result, run_ids)
            result.journal = journal.path.resolve()
            calls = asyncio.ensure_future(
                self._send(resumed, providers, result, run_ids, worker, journal)
            )
            self._signals.cancels(calls.cancel)
            loop = asyncio.get_running_loop()
            worker.on_server_gone(lambda: loop.call_soon_threadsafe(calls.cancel))
            await calls
            status = "KILLED" if result.batch_jobs_left else "FINISHED"
        except asyncio.CancelledError:
            stopped = self.stop_signal is not None or worker.server_gone is not None
            if calls is None or not calls.cancelled() or not stopped:
                raise
            status = "KILLED"
        except Exception as e:
            failure = e
        finally:
            self._signals.now_waiting_for("the last traces and the runs to be written")
            if journal is not None:
                journal.close()
            # in a thread: the loop meanwhile closes what the cancelled calls left open (a judge
            # request in flight must not be answered in full, unjournaled)
            await asyncio.to_thread(self._end_judging, result)
            try:
                if worker.server_gone is None:  # else nothing can be written: runs stay open
                    await asyncio.to_thread(self._finish, result, run_ids, status)
                else:
                    await asyncio.to_thread(worker.drain)
            finally:
                result.traces_written, result.traces_failed = worker.traces.written, worker.failed
                result.traces_failure = worker.failure_reason
            result.status = status
        if worker.server_gone is not None:
            raise self._server_gone(result)
        if failure is not None:
            raise RunFailed(parent_id, failure) from failure
        return result

    async def _send(
        self,
        resumed: Resumed | None,
        providers: dict[str, Provider],
        result: RunResult,
        run_ids: dict[str, str],
        worker: WorkerClient,
        journal: Journal,
    ) -> None:
        """Every call not yet finished: the warmups first (cold starts, measured apart)."""
        batched = batched_ids(self.plan.variants)
        if resumed and batched:  # a batched call that errored or expired is sent again
            resumed = for_resume(resumed, batched)
        done = self._restore(resumed, result, worker, run_ids) if resumed else set()

        def on_record(record: CallRecord) -> None:
            journal.append(record)  # first: a paid result is safe before anything else
            self._took(result, record)
            worker.submit(record, run_ids[record.variant_id])
            self.hooks.call_finished(record)

        runnable = tuple(v for v in self.plan.variants if v.id in providers)
        with gc_paused():  # 100,000 calls made at once: no collection walks them meanwhile
            warmups = [
                c
                for c in self.plan.warmup_calls(runnable)
                if c.key not in done and c.variant.id not in batched  # no cold start to measure
            ]
            remaining = [c for c in self.plan.calls(runnable) if c.key not in done]
        self.hooks.started(len(warmups) + len(remaining))
        to_batch = [c for c in remaining if c.variant.id in batched]
        remaining = [c for c in remaining if c.variant.id not in batched]
        runner = Runner(
            providers,
            self.pricers,
            concurrency=self.loaded.config.concurrency,
            on_record=on_record,
            retry=self.request.retry,
            cache=self._cache,
            budget=self._budget(),
            pace=lambda: _pace(worker),
        )
        await runner.run(warmups)
        hooks, detach = self.hooks, self.request.detach
        sent = send_batched(
            to_batch, providers, self.pricers, journal, on_record, runner, hooks, detach
        )
        _, left = await asyncio.gather(runner.run(remaining), sent)
        result.batch_jobs_left, result.batch_calls_left = left
        for variant_id, first in runner.broken_variants().items():
            raise VariantBroken(variant_id, first) from first
        if result.batch_jobs_left:  # --detach: the jobs run on; --resume collects them
            return
        self.judged = await self._judge(result, journal)
        if self.judged is not None:  # --detach: a batched judge's jobs run on
            result.batch_jobs_left = self.judged.batch_jobs_left
            result.batch_calls_left = self.judged.batch_calls_left

    async def _judge(self, result: RunResult, journal: Journal) -> Judged | None:
        """The judges' scores of every answer, once all calls are in (their cost counts
        against the same budget); None when no check is a judge. Each judge call is journaled
        as it ends: a resumed run asks no judge again what it answered."""
        from .judging import judge_records

        table = self.checks
        if not has_judges(table):
            return None

        def on_judged(entry: JudgeEntry) -> None:
            journal.append_judge(entry)  # first: a paid verdict is safe before anything else
            self._judge_entries.append(entry)

        return await judge_records(
            self._records(result),
            table,
            concurrency=self.loaded.config.concurrency,
            retry=self.request.retry,
            budget=self._budget(),
            config_name=self.loaded.path.name,
            known=list(self._judge_entries),
            on_judged=on_judged,
            journal=journal,  # a batched judge's jobs are journaled there
            hooks=self.hooks,
            detach=self.request.detach,
        )

    def _took(self, result: RunResult, record: CallRecord) -> None:
        """One more call finished or resumed: counted, its cost spent, kept for a judge."""
        with self._lock:
            result.count(record)
            if record.cost is not None and record.cost.usd:
                self._spent_usd += record.cost.usd
            if self._kept is not None:
                self._kept[record.variant_id].append(record)

    def _records(self, result: RunResult) -> dict[str, list[CallRecord]]:
        """The answers the judges read (kept only when the file has a judge)."""
        with self._lock:
            return {k: list(v) for k, v in (self._kept or {}).items()}

    def _end_judging(self, result: RunResult) -> None:
        """What the judges said, however judging ended; when it was stopped (a signal, the
        server gone), the verdicts journaled so far: the calls still without one are left out
        of the pass rate, never failed."""
        if self.judged is None and has_judges(self.checks):
            assert self.checks is not None
            records = self._records(result)
            self.judged = judged_so_far(records, self.checks, self._judge_entries)
        if self.judged is not None:
            result.judge_failures = list(self.judged.failures)
            result.unjudged = sum(len(keys) for keys in self.judged.unjudged.values())

    def _open_journal(self, result: RunResult, run_ids: dict[str, str]) -> Journal:
        header = JournalHeader(
            parent_run_id=result.parent_run_id,
            run_ids=run_ids,
            experiment_id=result.experiment_id,
            config_sha256=self.loaded.sha256,
            config_path=str(self.loaded.path.resolve()),
            tracking_uri=self.tracking_uri,
        )
        return Journal(journal_path(result.parent_run_id, self.request.journal_dir), header)

    def _server_gone(self, result: RunResult) -> ServerGone:
        """The one line for a server that stopped answering: the runs stay open for --resume."""
        return ServerGone(
            result.tracking_uri, result.n_calls, self._resume_command(result.parent_run_id)
        )

    def _resume_command(self, parent_run_id: str) -> str:
        from .redact import redact_url

        command = f"llmflow run {self.request.experiment_file} --resume {parent_run_id}"
        if self.request.tracking_uri:
            command += f" --tracking-uri {redact_url(self.request.tracking_uri)}"
        return command

    def _abandon(self) -> None:
        """A third stop signal: stop waiting for the cleanup, but never leave a run RUNNING
        (the child ends them at once, beside the traces it is still writing)."""
        run_ids = [self.parent_run_id, *self._run_ids.values()] if self.parent_run_id else []

        def end_runs(ids: list[str], status: str) -> None:  # the runs exist: so does the worker
            self.worker.end_runs_now(EndRuns(tuple(ids), status))

        abandon(
            end_runs if run_ids else None, run_ids, self._resume_command(self.parent_run_id or "")
        )

    def _restore(
        self, resumed: Resumed, result: RunResult, worker: WorkerClient, run_ids: dict[str, str]
    ) -> set[tuple[str, str, int]]:
        """Take the journaled calls back; the worker keeps them too and writes the traces a kill
        prevented. The done keys."""
        for record in resumed.records:
            self._took(result, record)
        self._judge_entries.extend(resumed.judges)
        result.resumed_calls = len(resumed.records)
        worker.submitted += worker.ask(Resume(run_ids, tuple(resumed.records)))
        return {(r.variant_id, r.case_id, r.repeat) for r in resumed.records}

    def _open_runs(self, experiment_id: str, resumed: Resumed | None) -> tuple[str, dict[str, str]]:
        """The parent and variant runs: new, or reopened to resume."""
        from .tracking.runs import variant_params

        if resumed is not None:
            parent_id, run_ids = resumed.header.parent_run_id, resumed.header.run_ids
            self.worker.ask(Reopen(parent_id, tuple(run_ids.values())))
            return parent_id, run_ids
        task, digests = self.loaded.config.task, self.loaded.training_sha256
        variants = tuple(
            (v, variant_params(v, task, self.pricers[v.id].describe(), digests.get(v.entry.train)))
            for v in self.plan.variants
        )
        system = self.loaded.common_system_prompt
        loaded, _ = without_prompts(self.loaded, self.plan)
        with tempfile.TemporaryDirectory(prefix="llmflow-prompts-") as folder:
            prompts = write_prompt_set(self.loaded.prompts, Path(folder))
            opened = OpenRuns(experiment_id, loaded, prompts, variants, system, __version__)
            return self.worker.ask(opened)

    def _budget(self) -> Budget | None:
        if self.limit is None:
            return None
        with self._lock:
            budget = Budget(self.limit)
            budget.spent_usd = self._spent_usd
            return budget

    def _finish(self, result: RunResult, run_ids: dict[str, str], status: str) -> None:
        """Write what was collected, even after a failure or Ctrl-C: calls paid for are kept.
        One request: the worker finishes with the calls it kept and renders the report. If the
        store fails now, every run is still ended, never left RUNNING."""
        # a model trained in the run logs itself on its variant run
        trained = {k: p for k, p in self.providers.items() if hasattr(p, "pipeline")}
        request = FinishRun(
            run_ids=run_ids,
            status=status,
            skipped=tuple(result.skipped),
            judged=self.judged,
            trained=trained,
            resumed_calls=result.resumed_calls,
            journal_dir=self.request.journal_dir,
            report_dir=self.request.report_dir,
        )
        try:
            finished = self.worker.ask(request)
        except Exception as e:
            self._end_all_failed([result.parent_run_id, *run_ids.values()])
            raise RunFailed(result.parent_run_id, e) from e
        self.worker.traces = finished.traces
        result.comparison = finished.comparison
        result.problems = list(finished.problems)
        result.headline = list(finished.headline)
        result.report_stored = finished.report_stored

    def _end_all_failed(self, run_ids: list[str]) -> None:
        """Best effort, after a finishing that failed, wherever it failed: the worker ends the
        runs, or a fresh one when it is gone."""
        request = EndRuns(tuple(run_ids), "FAILED")
        try:
            self.worker.ask(request)
            return
        except Exception:  # noqa: BLE001 - the worker is gone: a fresh one tries
            pass
        with contextlib.suppress(Exception):  # the store itself is failing: nothing more to do
            worker, _ = _start_worker(self.tracking_uri, set())
            try:
                worker.ask(request)
            finally:
                worker.close()
