"""The one orchestrator: config -> plan -> providers -> runner -> tracking -> comparison.

run_experiment reads the file, builds the plan, checks it against the budget and finds the
journal to resume; a Session (session.py) sends the calls and finishes the runs; then the chosen
variants are registered.

This process never imports MLflow: the worker (worker/) keeps the store, and the runs are
opened, finished and registered there. The one exception: a file that reads its prompts or
system prompt from MLflow (tracking/mlflow_sources.py).
"""

from __future__ import annotations

import asyncio

from ._process import gc_paused
from .budget import preflight
from .cache import ResponseCache
from .config import LoadedExperiment, load_experiment
from .config.environment import resolve_cache_path
from .errors import Interrupted
from .journal import load_for_resume
from .mlflow_judging import has_mlflow_judges
from .plan import build_plan
from .pricing import Pricer
from .rescore import judge_with_mlflow
from .run_types import LATEST, RunHooks, RunRequest, RunResult
from .scoring.judge_plan import judge_checks
from .session import Session, without_prompts
from .stopping import stop_signals_interrupt
from .tracking.mlflow_sources import StoreSources
from .tracking.uri import resolve_tracking_uri
from .worker.pool import prestart
from .worker.protocol import Register


def run_experiment(request: RunRequest, hooks: RunHooks | None = None) -> RunResult:
    """Run every call of the experiment file and record it all in MLflow.

    Raises ConfigError before any run is created or any call is made when the file is invalid
    or the plan could exceed the budget, TrackingError when the MLflow store cannot be used,
    and Interrupted on Ctrl-C (after ending the runs as KILLED).
    """
    tracking_uri = resolve_tracking_uri(request.tracking_uri)
    prestart(tracking_uri)  # MLflow's import starts now, there
    # a 100,000-prompt file makes millions of objects that live as long as the run: the
    # collector walking them again and again meanwhile tripled the time to the first call
    with gc_paused():
        # a dataset or registry prompt the file names is read here: only then is MLflow imported
        loaded = load_experiment(request.experiment_file, sources=StoreSources(tracking_uri))
        plan = build_plan(loaded)
    pricers = {v.id: Pricer(v.entry) for v in plan.variants}
    limit = request.max_cost_usd if request.max_cost_usd is not None else loaded.config.max_cost_usd
    if limit is not None:
        judges = judge_checks(loaded)
        preflight(plan, pricers, limit, loaded.config.allow_unpriced, loaded.path.name, judges)
    resumed = None
    if request.resume:
        run_id = None if request.resume == LATEST else request.resume
        resumed = load_for_resume(run_id, request.journal_dir, loaded.path, loaded.sha256)
    cache = _open_cache(loaded, request.use_cache)  # a bad cache file: ConfigError, no run yet
    session = Session(loaded, plan, pricers, request, hooks or RunHooks(), limit, cache)
    try:
        try:
            result = asyncio.run(session.run(resumed))
        except (KeyboardInterrupt, asyncio.CancelledError):
            raise Interrupted(None, None, session.stop_signal or "SIGINT") from None
        finally:
            if cache is not None:
                cache.close()
        if session.stop_signal is not None:
            raise Interrupted(result.parent_run_id, result.status, session.stop_signal)
        if has_mlflow_judges(loaded):  # MLflow's judges, on the traces just written
            result.comparison = judge_with_mlflow(loaded, result)
        with stop_signals_interrupt() as received:
            try:
                lean, variants = without_prompts(loaded, plan)
                outcome = session.worker.ask(
                    Register(lean, variants, request.register_all, result.comparison)
                )
            except KeyboardInterrupt:
                session.abandon_worker()  # the registration stops here, unfinished
                raise Interrupted(result.parent_run_id, result.status, received()) from None
    finally:
        session.close_worker()
    result.registered += outcome.registered
    result.registry_notes += outcome.notes
    result.problems += outcome.problems
    return result


def _open_cache(loaded: LoadedExperiment, use_cache: bool | None) -> ResponseCache | None:
    """The response cache when the file (`cache:`) or `--cache` asks; `--no-cache` wins over
    both. Off by default: a tool that measures latency measures."""
    if use_cache is False:
        return None
    path = resolve_cache_path(loaded.config.cache, loaded.path.parent, force=bool(use_cache))
    return ResponseCache.open(path) if path is not None else None
