"""The one orchestrator: config -> plan -> providers -> runner -> tracking -> comparison."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import LoadedExperiment, load_experiment, resolve_connection, resolve_tracking_uri
from .errors import MissingCredentials, ProviderError
from .plan import Plan, Variant, build_plan
from .pricing import Pricer
from .providers import Provider, create_provider
from .runner import RetryPolicy, Runner
from .stats import summarize
from .types import CallRecord

if TYPE_CHECKING:
    from .report import Comparison


@dataclass(frozen=True)
class RunRequest:
    """What `llmflow run` asks for."""

    experiment_file: Path
    tracking_uri: str | None = None
    register_all: bool = False  # register every variant, not only those with register_as
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
    traces_written: int = 0
    traces_failed: int = 0
    comparison: Comparison | None = None
    registered: list[str] = field(default_factory=list)  # "name v3 (variant)"
    problems: list[str] = field(default_factory=list)  # registration/policy trouble, one line each

    @property
    def n_failed_calls(self) -> int:
        return sum(not r.ok for records in self.records.values() for r in records)

    @property
    def exit_code(self) -> int:
        """0 when every call succeeded, 1 when some failed or a variant was skipped."""
        return 1 if self.n_failed_calls or self.skipped else 0


class RunHooks:
    """Progress callbacks; the CLI draws a progress bar with them. All optional."""

    def started(self, total_calls: int) -> None: ...

    def call_finished(self, record: CallRecord) -> None: ...

    def variant_skipped(self, skipped: Skipped) -> None: ...


def run_experiment(request: RunRequest, hooks: RunHooks | None = None) -> RunResult:
    """Run every call of the experiment file and record it all in MLflow.

    Raises ConfigError before any run is created or any call is made when the file is invalid,
    and TrackingError when the MLflow store cannot be used.
    """
    from .tracking.runs import RunStore

    hooks = hooks or RunHooks()
    loaded = load_experiment(request.experiment_file)
    plan = build_plan(loaded)
    tracking_uri = resolve_tracking_uri(request.tracking_uri)
    store = RunStore(tracking_uri)
    store.check()
    result = asyncio.run(_run(loaded, plan, store, request, hooks))
    _register(store, loaded, plan, request, result)
    return result


def _register(
    store, loaded: LoadedExperiment, plan: Plan, request: RunRequest, result: RunResult
) -> None:
    """Register the variants asked for, then apply the file's promotion policy, if any."""
    from .tracking import registry

    if result.comparison is None:
        return
    policy = loaded.config.promote
    rules = policy.require if policy else []
    wanted = {v.id for v in plan.variants if v.entry.register_as or request.register_all}
    versions = []
    for row in result.comparison.rows:
        if row.variant_id not in wanted or row.skipped or row.n_calls == row.n_errors:
            continue
        try:
            mv = registry.register_run(store.client, row.run_id, gates_from_file=rules)
        except Exception as e:  # the run's data is safe in MLflow; say what failed and go on
            result.problems.append(f"could not register {row.variant_id}: {type(e).__name__}: {e}")
            continue
        versions.append(mv)
        result.registered.append(f"{mv.name} v{mv.version} ({row.variant_id})")
    if policy and policy.best_by and versions:
        _promote_best(store.client, versions, policy.best_by, result)


def _promote_best(client, versions, metric: str, result: RunResult) -> None:
    from .tracking import registry

    scored = [(registry.recorded_metrics(mv).get(metric), mv) for mv in versions]
    scored = [(value, mv) for value, mv in scored if value is not None]
    if not scored:
        result.problems.append(f"promote.best_by: no registered variant recorded {metric}")
        return
    _, best = min(scored, key=lambda pair: pair[0])
    try:
        registry.promote(client, best.name, best.version, "staging")
        result.registered.append(f"{best.name} v{best.version} promoted to staging (best {metric})")
    except registry.PromotionRefused as e:
        result.problems.append(f"{best.name} v{best.version} not promoted: {e}")


async def _run(
    loaded: LoadedExperiment, plan: Plan, store, request: RunRequest, hooks: RunHooks
) -> RunResult:
    from .tracking.runs import variant_params
    from .tracking.traces import TraceWriter

    providers, skipped = await _open_providers(plan, loaded)
    try:
        for s in skipped:
            hooks.variant_skipped(s)
        experiment_id = store.experiment_id(loaded.config.experiment)
        parent_id = store.start_parent(experiment_id, loaded, __version__)
        pricers = {v.id: Pricer(v.entry) for v in plan.variants}
        system = _common_system_prompt(loaded)
        run_ids = {
            v.id: store.start_variant(
                experiment_id,
                parent_id,
                v,
                variant_params(v, loaded.config.task, pricers[v.id].describe()),
                system,
            )
            for v in plan.variants
        }
        result = RunResult(
            experiment_name=loaded.config.experiment,
            experiment_id=experiment_id,
            parent_run_id=parent_id,
            tracking_uri=store.tracking_uri,
            records=defaultdict(list),
            skipped=skipped,
        )
        traces = TraceWriter(store.client, experiment_id)
        variants = {v.id: v for v in plan.variants}
        lock = threading.Lock()

        def on_record(record: CallRecord) -> None:
            with lock:
                result.records[record.variant_id].append(record)
            traces.submit(record, variants[record.variant_id], run_ids[record.variant_id])
            hooks.call_finished(record)

        runnable = tuple(v for v in plan.variants if v.id in providers)
        hooks.started(len(runnable) * len(plan.cases) * plan.repeats)
        runner = Runner(
            providers,
            pricers,
            concurrency=loaded.config.concurrency,
            on_record=on_record,
            retry=request.retry,
        )
        status = "FAILED"
        try:
            await runner.run(plan.calls(runnable))
            status = "FINISHED"
        except (KeyboardInterrupt, asyncio.CancelledError):
            status = "KILLED"
            raise
        finally:
            await asyncio.to_thread(traces.close)
            result.traces_written, result.traces_failed = traces.written, traces.failed
            result.comparison = _finish_runs(store, plan, result, run_ids, parent_id, status)
        return result
    finally:
        await asyncio.gather(*(p.aclose() for p in providers.values()), return_exceptions=True)


def _finish_runs(
    store, plan: Plan, result: RunResult, run_ids, parent_id: str, status: str
) -> Comparison:
    """Write what was collected, even after a failure or Ctrl-C: calls paid for are kept."""
    from .report import comparison_artifacts, load_comparison

    skipped = {s.variant.id: s.reason for s in result.skipped}
    for variant in plan.variants:
        run_id = run_ids[variant.id]
        if variant.id in skipped:
            store.client.set_tag(run_id, "llmflow.skipped", skipped[variant.id])
            store.finish_variant(run_id, [], {}, "FAILED")
            continue
        records = result.records.get(variant.id, [])
        store.finish_variant(run_id, records, summarize(records), status)
    comparison = load_comparison(store.client, result.experiment_name, parent_id)
    store.finish_parent(parent_id, comparison_artifacts(comparison), status)
    return comparison


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
                variant.provider, **_provider_options(variant, connection)
            )
        except MissingCredentials as e:
            skipped.append(Skipped(variant, str(e)))

    async def check(variant_id: str, provider: Provider) -> str | None:
        try:
            await provider.check()
        except ProviderError as e:
            return f"{type(e).__name__}: {e}"
        return None

    checks = await asyncio.gather(*(check(vid, p) for vid, p in providers.items()))
    by_id = {v.id: v for v in plan.variants}
    for (variant_id, provider), reason in zip(list(providers.items()), checks, strict=True):
        if reason is not None:
            skipped.append(Skipped(by_id[variant_id], reason))
            await provider.aclose()
            del providers[variant_id]
    return providers, skipped


def _provider_options(variant: Variant, connection) -> dict:
    entry = variant.entry
    options = {
        "model": variant.model,
        "base_url": connection.base_url,
        "api_key": connection.api_key,
        "timeout_s": entry.timeout_s,
    }
    for name in ("prompt_template", "n_threads", "n_ctx"):
        if (value := getattr(entry, name)) is not None:
            options[name] = value
    return options
