"""The one orchestrator: config -> plan -> providers -> runner -> tracking -> comparison.

Every finished call goes to the journal first, then to the in-memory records, the trace writer
and the progress bar. Whatever happens (failure, Ctrl-C), the MLflow runs are finished with
what was collected; after a kill -9, `--resume` continues them from the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .budget import Budget, preflight
from .cache import ResponseCache
from .config import (
    LoadedExperiment,
    load_experiment,
    resolve_cache_path,
    resolve_connection,
    resolve_tracking_uri,
)
from .errors import Interrupted, LlmflowError, MissingCredentials, ProviderError, RunFailed
from .journal import Journal, JournalHeader, Resumed, journal_path, load_for_resume
from .plan import Plan, Variant, build_plan
from .pricing import Pricer
from .providers import Provider, create_provider
from .redact import redact_text
from .registration import register_and_promote
from .runner import RetryPolicy, Runner
from .scoring import case_table
from .stats import summarize
from .stopping import StopSignals, stop_signals_interrupt
from .types import CallRecord

if TYPE_CHECKING:
    from .report import Comparison
    from .scoring.judge import Judged
    from .tracking.runs import RunStore
    from .tracking.trace_writer import TraceWriter

LATEST = "latest"


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
    records: dict[str, list[CallRecord]]
    skipped: list[Skipped]
    resumed_calls: int = 0
    traces_written: int = 0
    traces_failed: int = 0
    traces_failure: str | None = None  # why the first trace that failed did
    status: str = "RUNNING"  # what the runs were ended as: FINISHED, KILLED or FAILED
    comparison: Comparison | None = None
    registered: list[str] = field(default_factory=list)  # "name v3 (variant)"
    problems: list[str] = field(default_factory=list)  # registration/policy trouble, one line each

    @property
    def n_failed_calls(self) -> int:
        return sum(not r.ok for records in self.records.values() for r in records)

    @property
    def n_empty_answers(self) -> int:
        """Blank answers among the measured calls (the variants' n_empty, summed)."""
        rows = self.comparison.rows if self.comparison is not None else ()
        return sum(row.n_empty for row in rows)

    @property
    def n_cached_calls(self) -> int:
        return sum(r.cached for records in self.records.values() for r in records)

    @property
    def exit_code(self) -> int:
        """0 when every call succeeded and was traced; 1 when a call failed, a variant was
        skipped or a trace could not be written."""
        return 1 if self.n_failed_calls or self.skipped or self.traces_failed else 0


class RunHooks:
    """Progress callbacks; the CLI draws a progress bar with them. All optional."""

    def started(self, total_calls: int) -> None: ...

    def call_finished(self, record: CallRecord) -> None: ...

    def variant_skipped(self, skipped: Skipped) -> None: ...


def run_experiment(request: RunRequest, hooks: RunHooks | None = None) -> RunResult:
    """Run every call of the experiment file and record it all in MLflow.

    Raises ConfigError before any run is created or any call is made when the file is invalid
    or the plan could exceed the budget, TrackingError when the MLflow store cannot be used,
    and Interrupted on Ctrl-C (after ending the runs as KILLED).
    """
    loaded = load_experiment(request.experiment_file)
    plan = build_plan(loaded)
    pricers = {v.id: Pricer(v.entry) for v in plan.variants}
    limit = request.max_cost_usd if request.max_cost_usd is not None else loaded.config.max_cost_usd
    if limit is not None:
        preflight(plan, pricers, limit, loaded.config.allow_unpriced, loaded.path.name)
    resumed = None
    if request.resume:
        run_id = None if request.resume == LATEST else request.resume
        resumed = load_for_resume(run_id, request.journal_dir, loaded.path, loaded.sha256)
    cache = _open_cache(loaded, request.use_cache)  # a bad cache file: ConfigError, no run yet
    session = _Session(loaded, plan, pricers, request, hooks or RunHooks(), limit, cache)
    try:
        result = asyncio.run(session.run(resumed))
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise Interrupted(None, None, session.stop_signal or "SIGINT") from None
    finally:
        if cache is not None:
            cache.close()
    if session.stop_signal is not None:
        raise Interrupted(result.parent_run_id, result.status, session.stop_signal)
    with stop_signals_interrupt() as received:
        try:
            register_and_promote(session.store.client, loaded, plan, request.register_all, result)
        except KeyboardInterrupt:
            raise Interrupted(result.parent_run_id, result.status, received()) from None
    return result


def _open_cache(loaded: LoadedExperiment, use_cache: bool | None) -> ResponseCache | None:
    """The response cache when the file (`cache:`) or `--cache` asks; `--no-cache` wins over
    both. Off by default: a tool that measures latency measures."""
    if use_cache is False:
        return None
    path = resolve_cache_path(loaded.config.cache, loaded.path.parent, force=bool(use_cache))
    return ResponseCache.open(path) if path is not None else None


def _open_store(tracking_uri: str) -> RunStore:
    from .tracking.runs import open_store

    return open_store(tracking_uri)


_ABANDON_WAIT_S = 5.0


class _Session:
    """One `llmflow run`: the state shared by the async part and the cleanup."""

    store: RunStore  # opened by run(), alongside the providers

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
        self._traces: TraceWriter | None = None
        self._lock = threading.Lock()
        self.judged: Judged | None = None  # the judges' scores, once the calls are in
        self.providers: dict[str, Provider] = {}  # once opened: a trained model is logged

    @property
    def stop_signal(self) -> str | None:
        """The name of the stop signal received (SIGINT, SIGTERM, SIGHUP), if any."""
        return self._signals.received if self._signals else None

    async def run(self, resumed: Resumed | None) -> RunResult:
        from .tracking.trace_writer import TraceWriter

        # opening the store and starting the trace writer (imports, migrations: seconds) overlap
        # opening the providers; all three finish before the first call is sent
        uri = resolve_tracking_uri(self.request.tracking_uri)
        opening = asyncio.ensure_future(asyncio.to_thread(_open_store, uri))
        starting = asyncio.ensure_future(asyncio.to_thread(TraceWriter, uri))
        providers: dict[str, Provider] = {}
        with StopSignals(self._abandon) as self._signals:
            # before the runs exist, a stop signal simply ends the start-up
            self._signals.cancels(asyncio.current_task().cancel)
            try:
                providers, skipped = await _open_providers(self.plan, self.loaded)
                self.providers = providers
                self.store = await opening
                self._traces = await starting
                return await self._run(resumed, providers, skipped, self._traces)
            finally:
                # whatever failed, the writer process ends (close is a no-op after _run's)
                outcome = await asyncio.gather(opening, starting, return_exceptions=True)
                if isinstance(outcome[1], TraceWriter):
                    await asyncio.to_thread(outcome[1].close)
                await asyncio.gather(
                    *(p.aclose() for p in providers.values()), return_exceptions=True
                )

    async def _run(
        self,
        resumed: Resumed | None,
        providers: dict[str, Provider],
        skipped: list[Skipped],
        traces: TraceWriter,
    ) -> RunResult:
        for s in skipped:
            self.hooks.variant_skipped(s)
        experiment_id = self.store.experiment_id(self.loaded.config.experiment)
        if resumed is not None:
            self._check_unfinished(resumed)
        # from here on the runs exist: a signal stops the calls, never the cleanup below
        parent_id, run_ids = self._open_runs(experiment_id, resumed)
        self.parent_run_id, self._run_ids = parent_id, run_ids
        result = RunResult(
            experiment_name=self.loaded.config.experiment,
            experiment_id=experiment_id,
            parent_run_id=parent_id,
            tracking_uri=self.store.tracking_uri,
            records=defaultdict(list),
            skipped=skipped,
        )
        status, failure = "FAILED", None
        journal: Journal | None = None
        calls: asyncio.Future[None] | None = None
        try:
            journal = self._open_journal(result, run_ids)
            calls = asyncio.ensure_future(
                self._send(resumed, providers, result, run_ids, traces, journal)
            )
            self._signals.cancels(calls.cancel)
            await calls
            status = "FINISHED"
        except asyncio.CancelledError:
            if calls is None or not calls.cancelled() or self.stop_signal is None:
                raise
            status = "KILLED"
        except Exception as e:
            failure = e
        finally:
            self._signals.now_waiting_for("the last traces and the runs to be written")
            if journal is not None:
                journal.close()
            await asyncio.to_thread(traces.close)
            result.traces_written, result.traces_failed = traces.written, traces.failed
            result.traces_failure = traces.failure_reason
            result.comparison = await asyncio.to_thread(self._finish, result, run_ids, status)
            result.status = status
        if failure is not None:
            raise RunFailed(parent_id, failure) from failure
        return result

    async def _send(
        self,
        resumed: Resumed | None,
        providers: dict[str, Provider],
        result: RunResult,
        run_ids: dict[str, str],
        traces: TraceWriter,
        journal: Journal,
    ) -> None:
        """Every call not yet finished: the warmups first (cold starts, measured apart)."""
        traces.begin(result.experiment_id, self.plan.variants, case_table(self.loaded))
        variants = {v.id: v for v in self.plan.variants}
        done = self._restore(resumed, result, traces, run_ids) if resumed else set()

        def on_record(record: CallRecord) -> None:
            journal.append(record)  # first: a paid result is safe before anything else
            with self._lock:
                result.records[record.variant_id].append(record)
            traces.submit(record, variants[record.variant_id], run_ids[record.variant_id])
            self.hooks.call_finished(record)

        runnable = tuple(v for v in self.plan.variants if v.id in providers)
        warmups = [c for c in self.plan.warmup_calls(runnable) if c.key not in done]
        remaining = [c for c in self.plan.calls(runnable) if c.key not in done]
        self.hooks.started(len(warmups) + len(remaining))
        runner = Runner(
            providers,
            self.pricers,
            concurrency=self.loaded.config.concurrency,
            on_record=on_record,
            retry=self.request.retry,
            cache=self._cache,
            budget=self._budget(result),
        )
        await runner.run(warmups)
        await runner.run(remaining)
        self.judged = await self._judge(result)

    async def _judge(self, result: RunResult) -> Judged | None:
        """The judges' scores of every answer, once all calls are in (their cost counts
        against the same budget); None when no check is a judge."""
        from .scoring.judge import has_judges, judge_records

        table = case_table(self.loaded)
        if not has_judges(table):
            return None
        with self._lock:
            records = {k: list(v) for k, v in result.records.items()}
        return await judge_records(
            records,
            table,
            concurrency=self.loaded.config.concurrency,
            retry=self.request.retry,
            budget=self._budget(result),
            config_name=self.loaded.path.name,
        )

    def _open_journal(self, result: RunResult, run_ids: dict[str, str]) -> Journal:
        header = JournalHeader(
            parent_run_id=result.parent_run_id,
            run_ids=run_ids,
            experiment_id=result.experiment_id,
            config_sha256=self.loaded.sha256,
            config_path=str(self.loaded.path.resolve()),
            tracking_uri=self.store.tracking_uri,
        )
        return Journal(journal_path(result.parent_run_id, self.request.journal_dir), header)

    def _check_unfinished(self, resumed: Resumed) -> None:
        """Resuming a run that already finished would change it: refuse, change nothing."""
        parent_id = resumed.header.parent_run_id
        status = self.store.client.get_run(parent_id).info.status
        if status == "FINISHED":
            raise LlmflowError(
                f"run {parent_id} already finished: nothing to resume "
                f"(llmflow compare -e {self.loaded.config.experiment!r} --run {parent_id})"
            )

    def _abandon(self) -> None:
        """A third stop signal: stop waiting for the cleanup, but never leave a run RUNNING.

        The runs are marked KILLED from a thread given a few seconds: a store that does not
        answer (often why a user presses Ctrl-C three times) must not hold the process."""
        import os

        if self._traces is not None:
            self._traces.abandon()
        if self.parent_run_id is None:
            print("abandoned before any MLflow run was created", file=sys.stderr, flush=True)
            os._exit(130)
        ids = [self.parent_run_id, *self._run_ids.values()]
        ending = threading.Thread(target=self._end_runs, args=(ids, "KILLED"), daemon=True)
        ending.start()
        ending.join(_ABANDON_WAIT_S)
        outcome = "was ended as KILLED" if not ending.is_alive() else "could not be ended in time"
        resume = f"llmflow run {self.request.experiment_file} --resume {self.parent_run_id}"
        print(
            f"abandoned: MLflow run {self.parent_run_id} {outcome}; resume: {resume}",
            file=sys.stderr,
            flush=True,
        )
        os._exit(130)

    def _end_runs(self, run_ids: list[str], status: str) -> None:
        """Best effort, for a store that is failing or a user who is leaving."""
        for run_id in run_ids:
            with contextlib.suppress(Exception):
                self.store.client.set_terminated(run_id, status=status)

    def _restore(
        self, resumed: Resumed, result: RunResult, traces: TraceWriter, run_ids: dict[str, str]
    ) -> set[tuple[str, str, int]]:
        """Take the journaled calls back, write the traces a kill prevented; the done keys."""
        from .tracking.traces import existing_trace_keys

        variants = {v.id: v for v in self.plan.variants}
        for record in resumed.records:
            result.records[record.variant_id].append(record)
        result.resumed_calls = len(resumed.records)
        for variant_id, run_id in run_ids.items():
            traced = existing_trace_keys(self.store.client, result.experiment_id, run_id)
            for record in result.records.get(variant_id, []):
                if (record.case_id, record.repeat) not in traced:
                    traces.submit(record, variants[variant_id], run_id)
        return {(r.variant_id, r.case_id, r.repeat) for r in resumed.records}

    def _open_runs(self, experiment_id: str, resumed: Resumed | None) -> tuple[str, dict[str, str]]:
        """The parent and variant runs (new, or reopened to resume). If the store fails halfway,
        those already opened are ended as FAILED, never left RUNNING."""
        from .tracking.runs import variant_params

        if resumed is not None:
            parent_id, run_ids = resumed.header.parent_run_id, resumed.header.run_ids
            opened = [parent_id, *run_ids.values()]
            try:
                self.store.reopen(opened)
            except Exception as e:
                self._end_runs(opened, "FAILED")
                raise RunFailed(parent_id, e) from e
            return parent_id, run_ids
        parent_id = self.store.start_parent(experiment_id, self.loaded, __version__)
        system = _common_system_prompt(self.loaded)
        run_ids: dict[str, str] = {}
        try:
            for v in self.plan.variants:
                params = variant_params(v, self.loaded.config.task, self.pricers[v.id].describe())
                run_ids[v.id] = self.store.start_variant(
                    experiment_id, parent_id, v, params, system
                )
        except Exception as e:
            self._end_runs([parent_id, *run_ids.values()], "FAILED")
            raise RunFailed(parent_id, e) from e
        return parent_id, run_ids

    def _budget(self, result: RunResult) -> Budget | None:
        if self.limit is None:
            return None
        budget = Budget(self.limit)
        budget.spent_usd = sum(
            r.cost.usd for rs in result.records.values() for r in rs if r.cost and r.cost.usd
        )
        return budget

    def _finish(self, result: RunResult, run_ids: dict[str, str], status: str) -> Comparison:
        """Write what was collected, even after a failure or Ctrl-C: calls paid for are kept.
        If the store fails now, every run is still ended, never left RUNNING."""
        try:
            return self._write_runs(result, run_ids, status)
        except Exception as e:
            self._end_runs([result.parent_run_id, *run_ids.values()], "FAILED")
            raise RunFailed(result.parent_run_id, e) from e

    def _write_runs(self, result: RunResult, run_ids: dict[str, str], status: str) -> Comparison:
        from .report import comparison_artifacts, load_comparison
        from .scoring import quality_metrics, score_records
        from .scoring.judge import judge_cost_metric, with_judges

        skipped = {s.variant.id: s.reason for s in result.skipped}
        checks = case_table(self.loaded)  # None when the file has no checks
        for variant in self.plan.variants:
            run_id = run_ids[variant.id]
            records = result.records.get(variant.id, [])  # a resumed, skipped one keeps its own
            if variant.id in skipped:
                self.store.client.set_tag(run_id, "llmflow.skipped", skipped[variant.id])
            variant_status = "FAILED" if variant.id in skipped else status
            scores = score_records(records, checks) if checks is not None else None
            judged = with_judges(scores, self.judged, variant.id)
            metrics = {**summarize(records), **quality_metrics(judged or {})}
            metrics.update(judge_cost_metric(self.judged, variant.id))
            metrics.update(self._classification(run_id, records, checks))
            self.store.finish_variant(run_id, records, metrics, variant_status, judged)
            self._log_judge_assessments(result, run_id, variant.id)
            self._log_trained_model(result, run_id, variant.id)
        comparison = load_comparison(
            self.store.client, result.experiment_name, result.parent_run_id
        )
        journal = journal_path(result.parent_run_id, self.request.journal_dir)
        if self.loaded.config.report:
            self._write_report(result)
        self.store.finish_parent(
            result.parent_run_id, comparison_artifacts(comparison), status, journal
        )
        return comparison

    def _classification(self, run_id: str, records: list[CallRecord], checks) -> dict[str, float]:
        """Task classify: accuracy, macro F1 and n_unparsed; the per-label table and the
        confusion matrix go on the variant run as classification.json (and per_label.json)."""
        from . import classify

        labels = self.loaded.config.labels
        if self.loaded.config.task != classify.TASK or not labels or checks is None:
            return {}
        found = classify.classified(records, checks, labels)
        self.store.client.log_dict(run_id, classify.artifact(found), classify.ARTIFACT)
        rows = classify.per_label(found)  # also as a table, which the MLflow UI shows
        columns = {name: [row[name] for row in rows] for name in classify.PER_LABEL_COLUMNS}
        self.store._log_table(run_id, columns, classify.PER_LABEL_TABLE)
        return classify.metrics(found)

    def _log_trained_model(self, result: RunResult, run_id: str, variant_id: str) -> None:
        """A model trained in the run (provider sklearn) logs itself on its variant run; a
        failure is reported, never fatal."""
        log = getattr(self.providers.get(variant_id), "log_to_run", None)
        if log is None:
            return
        try:
            log(self.store.client, run_id)
        except Exception as e:  # the calls and their metrics are safe already
            result.problems.append(
                f"could not log the model of {variant_id}: {redact_text(str(e))}"
            )

    def _log_judge_assessments(self, result: RunResult, run_id: str, variant_id: str) -> None:
        """The judges' scores as assessments on the traces, now written; a failure is reported,
        never fatal."""
        if self.judged is None or variant_id not in self.judged.scores:
            return
        from .tracking.assessments import log_call_scores

        try:
            log_call_scores(
                self.store.client, result.experiment_id, run_id, self.judged.scores[variant_id]
            )
        except Exception as e:  # the calls and their metrics are safe already
            result.problems.append(f"could not write the judge assessments: {redact_text(str(e))}")

    def _write_report(self, result: RunResult) -> None:
        """The report, built from MLflow alone, into the parent run (and --out). A failure here
        is reported, never fatal: the calls are already safe."""
        import tempfile

        from .report.data import load_report_data
        from .report.render import write_report

        try:
            data = load_report_data(self.store.client, result.experiment_name, result.parent_run_id)
            with tempfile.TemporaryDirectory() as tmp:
                write_report(data, Path(tmp))
                self.store.client.log_artifacts(result.parent_run_id, tmp, "report")
            if self.request.report_dir is not None:
                write_report(data, self.request.report_dir)
        except Exception as e:
            result.problems.append(f"could not write the report: {type(e).__name__}: {e}")


def _common_system_prompt(loaded: LoadedExperiment) -> str | None:
    """The system prompt every case shares, which a registered model should keep; else None."""
    systems = {p.system for p in loaded.prompts}
    return systems.pop() if len(systems) == 1 else None


async def _open_providers(
    plan: Plan, loaded: LoadedExperiment
) -> tuple[dict[str, Provider], list[Skipped]]:
    """Create each variant's provider and check it answers; the others are skipped with the fix."""
    providers: dict[str, Provider] = {}
    skipped: list[Skipped] = []
    for variant in plan.variants:
        try:
            connection = resolve_connection(variant.entry, loaded.path.name)
            providers[variant.id] = create_provider(
                variant.provider, **variant.entry.provider_options(connection)
            )
        except MissingCredentials as e:
            skipped.append(Skipped(variant, str(e)))

    async def check(provider: Provider) -> str | None:
        try:
            await provider.check()
        except ProviderError as e:
            return redact_text(f"{type(e).__name__}: {e}")
        return None

    checks = await asyncio.gather(*(check(p) for p in providers.values()))
    by_id = {v.id: v for v in plan.variants}
    for (variant_id, provider), reason in zip(list(providers.items()), checks, strict=True):
        if reason is not None:
            skipped.append(Skipped(by_id[variant_id], reason))
            await provider.aclose()
            del providers[variant_id]
    return providers, skipped
