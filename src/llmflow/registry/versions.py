"""The Model Registry: a variant run -> a pyfunc model -> a registered version -> aliases.

Promotion moves an alias (`staging`, `production`) and, for tools that still read them, the
legacy stage (archiving the version that held it). Every promotion is written on the version
as a tag `llmflow.promotion.<epoch ms>` so that history can be rebuilt from MLflow alone.

The registry has no transactions and no lock that holds across machines, so two promotions at
once can interleave. The aliases are the source of truth: after moving one, `reconcile` makes
the legacy stages agree with wherever the aliases point now. The last alias written wins; the
stages never disagree with it once every promotion has returned.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import io
import json
import math
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from .. import __version__, metrics
from ..errors import ConfigError, LlmflowError, PromotionRefused, TrackingError
from ..providers.spec import provider_spec
from ..redact import redact_url
from ..tracking.fluent import fluent_store
from ..tracking.run_lookup import resolve_run
from ..tracking.schema import (
    FINGERPRINT_TAG,
    GATES_TAG,
    KIND_VARIANT,
    PARENT_RUN_ID_TAG,
    PARENT_RUN_TAG,
    PROMOTION_PREFIX,
    SOURCE_RUN_TAG,
    TAG_CONFIG_SHA,
    TAG_MODEL,
    TAG_MODEL_URI,
    TAG_PROVIDER,
    TAG_VARIANT,
    VARIANT_ENTRY,
)
from . import gates, prompts
from .lookups import (
    alias_holder,
    model_of,
    registered_models,
    run_of,
    version_of,
    versions_of,
)

ALIASES = ("staging", "production")
STAGES = {"staging": "Staging", "production": "Production"}
RECORDED_METRICS = metrics.gateable()
RECONCILE_ROUNDS = 5
BY_HAND, BY_POLICY = "llmflow promote", "promote: policy"  # what moved an alias


def default_name(provider: str, task: str) -> str:
    return f"llm_{provider}_{task}"


def register_run(client: Any, run_id: str, name: str | None = None, gates_from_file=()) -> Any:
    """Log the variant run's configuration as a pyfunc model and register a new version.
    `run_id` may be any unique prefix of the variant run's id.

    The model's base_url is stored without credentials (see `_serving_entry`).
    """
    import mlflow

    run, saved, name = registration_target(client, run_id, name)
    run_id, entry = run.info.run_id, saved["entry"]
    params, metrics = run.data.params, run.data.metrics
    provider = params["provider"]
    model_uri = run.data.tags.get(TAG_MODEL_URI)  # a model trained in the run logged itself
    if model_uri is None and provider_spec(provider).trained_in_run:
        raise LlmflowError(
            f"run {run_id}: its trained {provider} model was not logged (the run's summary said "
            "why), so there is nothing to register: run the experiment again"
        )
    if model_uri is None:
        model_uri = _log_serving_model(
            client, run, {"entry": _serving_entry(entry), "system": saved.get("system")}, provider
        )
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        with fluent_store(client.tracking_uri):
            version = mlflow.register_model(model_uri, name, await_registration_for=0)
    tags = {
        SOURCE_RUN_TAG: run_id,
        PARENT_RUN_ID_TAG: run.data.tags.get(PARENT_RUN_TAG, ""),
        TAG_CONFIG_SHA: _parent_tag(client, run, TAG_CONFIG_SHA),
        TAG_PROVIDER: provider,
        TAG_MODEL: params.get("model", ""),
        TAG_VARIANT: run.data.tags.get(TAG_VARIANT, ""),
        GATES_TAG: json.dumps(list(gates_from_file)),
        FINGERPRINT_TAG: config_fingerprint(saved, params),
        # NaN: a metric its checks no longer feed (`llmflow score`), not recorded
        **{
            f"metric.{k}": repr(v)
            for k in RECORDED_METRICS
            if not math.isnan(v := metrics.get(k, math.nan))
        },
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    client.set_registered_model_tag(name, TAG_PROVIDER, provider)
    if not provider_spec(provider).trained_in_run:
        served = {"entry": _serving_entry(entry), "system": saved.get("system")}
        prompts.register_version_prompt(client, name, version.version, served, params["model"])
    return client.get_model_version(name, version.version)


def registration_target(
    client: Any, run_id: str, name: str | None = None
) -> tuple[Any, dict[str, Any], str]:
    """The variant run (`run_id`: any unique prefix), its saved model entry and system prompt,
    and the name it registers as: `name`, else register_as, else llm_<provider>_<task>."""
    run = run_of(client, resolve_run(client, run_id, KIND_VARIANT))
    saved = json.loads(_read(client, run.info.run_id, VARIANT_ENTRY))
    params = run.data.params
    default = default_name(params["provider"], params.get("task_type", "chat"))
    return run, saved, name or saved["entry"].get("register_as") or default


def config_fingerprint(saved: dict[str, Any], params: dict[str, str]) -> str:
    """What a version serves, as a digest: the model entry (less its name, register_as and the
    training file's path) and the system prompt, with the training data's sha256 (a model
    trained in the run is as its data). Equal digests: the same configuration."""
    entry = {k: v for k, v in saved["entry"].items() if k not in ("name", "register_as", "train")}
    basis = {"entry": entry, "system": saved.get("system"), "train": params.get("train_sha256")}
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()


def _log_serving_model(client: Any, run: Any, config: dict[str, Any], provider: str) -> str:
    """Log the variant's configuration as a pyfunc model on its run; the model's URI."""
    import mlflow

    run_id = run.info.run_id
    script = resources.files("llmflow.serving") / "model_script.py"
    # MLflow prints its own "Successfully registered" lines and schema hints to stderr; the
    # caller reports the registration in its own words
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            with fluent_store(client.tracking_uri), mlflow.start_run(run_id=run_id):
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(script),
                    model_config=config,
                    pip_requirements=[
                        f"llmflow=={__version__}",
                        *provider_spec(provider).pip_requirements,
                        "mlflow",
                    ],
                )
        finally:
            # start_run(run_id=...) reopened the run and ended it FINISHED (FAILED on Ctrl-C):
            # it keeps its own status
            client.set_terminated(run_id, status=run.info.status)
    return info.model_uri


def promote(
    client: Any,
    name: str,
    version: str,
    to: str,
    require: list[str] = (),
    force: bool = False,
    via: str = BY_HAND,
) -> dict[str, Any]:
    """Check the gates, then move the alias and the legacy stage. Returns the record written;
    `via` says what moved it (BY_HAND: `llmflow promote`; BY_POLICY: a run's promote: policy).

    The version that held the alias is archived. Sending the production version back to
    staging takes it out of production: it loses the `production` alias, and no version is
    in production until another is promoted there.
    """
    if to not in ALIASES:
        raise ConfigError(f"--to must be one of {', '.join(ALIASES)}, not {to!r}")
    gates.parse_all(list(require))
    mv = version_of(client, name, version)
    version = str(mv.version)
    rules = _distinct(list(require) + json.loads(mv.tags.get(GATES_TAG, "[]")))
    passed, failures = gates.check(rules, recorded_metrics(mv))
    if paired := gates.paired(rules):
        from . import paired_gates

        more_passed, more_failures = paired_gates.check(client, name, mv, paired)
        passed, failures = passed + more_passed, failures + more_failures
    if to == "production" and not force and not _was_in(mv, "staging"):
        failures.append(
            f"version {version} has never been in staging: promote it there first, or pass --force"
        )
    if failures:
        raise PromotionRefused(failures)
    previous = alias_holder(client, name, to)
    now = time.time()  # before the alias moves: concurrent promotions' records sort as they did
    dropped = _move_alias(client, name, version, to)
    for alias in (to, *dropped):
        prompts.follow_model_alias(client, name, alias)
    _set_stage(client, name, version, STAGES[to], archive_others=True)
    reconcile(client, name)
    record = {
        "to": to,
        "version": version,
        "previous_version": previous,
        "previous_stage": mv.current_stage,
        "dropped": dropped,
        "by": _who(),
        "at": _iso(now),
        "gates": passed,
        "forced": force,
        "via": via,
    }
    client.set_model_version_tag(
        name, version, f"{PROMOTION_PREFIX}{int(now * 1000)}", json.dumps(record)
    )
    return record


def reconcile(client: Any, name: str) -> list[tuple[str, str]]:
    """Move the legacy stages to where the aliases point now; returns the (version, stage) set.

    The `production` holder is in Production, the `staging` holder in Staging (unless it holds
    production too), and any other version in Staging or Production is archived. Another
    promotion may move an alias meanwhile, so this reads again after writing until what it
    reads agrees; whichever promotion returns last has seen the final state agree.
    """
    done: list[tuple[str, str]] = []
    fixes = _stage_fixes(client, name)
    for _ in range(RECONCILE_ROUNDS):
        if not fixes:
            return done
        for version, stage in fixes:
            _set_stage(client, name, version, stage)
        done += fixes
        fixes = _stage_fixes(client, name)
    if fixes:
        raise TrackingError(
            f"the aliases of {name} kept moving while their stages were being matched: "
            "check `llmflow models`, then promote again"
        )
    return done


def history(client: Any, name: str) -> list[dict[str, Any]]:
    """Every promotion of every version of `name`, oldest first."""
    stamped = []
    versions = versions_of(client, name)
    if not versions:
        model_of(client, name)  # a model with no versions has no history; no model is an error
    for mv in versions:
        for key, value in mv.tags.items():
            if key.startswith(PROMOTION_PREFIX):
                stamped.append((int(key.removeprefix(PROMOTION_PREFIX)), json.loads(value)))
    return [record for _, record in sorted(stamped, key=lambda pair: pair[0])]


@dataclass(frozen=True)
class VersionSummary:
    name: str
    version: str
    aliases: tuple[str, ...]
    stage: str
    provider: str
    model: str
    metrics: dict[str, float]
    source_run_id: str


def list_registry(client: Any) -> tuple[list[VersionSummary], list[str]]:
    """Every version of every registered model, by name then version; and the names of the
    models that have none (made in MLflow without one, or whose versions were all deleted)."""
    found, versionless = [], []
    for model in registered_models(client):
        versions = versions_of(client, model.name)
        if not versions:
            versionless.append(model.name)
        for listed in versions:
            mv = client.get_model_version(listed.name, listed.version)  # search omits aliases
            found.append(
                VersionSummary(
                    name=mv.name,
                    version=str(mv.version),
                    aliases=tuple(mv.aliases or ()),
                    stage=mv.current_stage,
                    provider=mv.tags.get(TAG_PROVIDER, ""),
                    model=mv.tags.get(TAG_MODEL, ""),
                    metrics=recorded_metrics(mv),
                    source_run_id=mv.tags.get(SOURCE_RUN_TAG, mv.run_id or ""),
                )
            )
    return sorted(found, key=lambda v: (v.name, int(v.version))), sorted(versionless)


def recorded_metrics(mv: Any) -> dict[str, float]:
    return {
        k.removeprefix("metric."): float(v) for k, v in mv.tags.items() if k.startswith("metric.")
    }


def _distinct(rules: list[str]) -> list[str]:
    """Each gate once, in order: the file and --require may both name it, spaced differently."""
    first: dict[str, str] = {}
    for rule in rules:
        first.setdefault(str(gates.parse(rule)), rule)
    return list(first.values())


def _was_in(mv: Any, alias: str) -> bool:
    return any(
        json.loads(v).get("to") == alias
        for k, v in mv.tags.items()
        if k.startswith(PROMOTION_PREFIX)
    )


def _move_alias(client: Any, name: str, version: str, to: str) -> list[str]:
    """Point `to` at the version; the aliases it loses on the way (production, going back)."""
    dropped = []
    if to == "staging" and alias_holder(client, name, "production") == version:
        client.delete_registered_model_alias(name, "production")
        dropped.append("production")
    _set_alias(client, name, to, version)
    return dropped


def _set_alias(client: Any, name: str, alias: str, version: str, tries: int = 3) -> None:
    from mlflow.exceptions import MlflowException

    for attempt in range(1, tries + 1):
        try:
            client.set_registered_model_alias(name, alias, version)
            return
        except MlflowException as e:
            # MLflow inserts an alias it has not seen: of two first settings at once, one
            # fails on the unique key (BAD_REQUEST); tried again, it is an update
            if e.error_code != "BAD_REQUEST" or attempt == tries:
                raise


def _set_stage(
    client: Any, name: str, version: str, stage: str, archive_others: bool = False
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stages are deprecated in MLflow; the seed reads them
        # never MLflow's archive_existing_versions: on PostgreSQL its query compares the integer
        # version column with a string and the request fails (MLflow 3.17)
        client.transition_model_version_stage(name, version, stage)
        if archive_others:
            for mv in versions_of(client, name):
                if str(mv.version) != str(version) and mv.current_stage == stage:
                    client.transition_model_version_stage(name, mv.version, "Archived")


def _stage_fixes(client: Any, name: str) -> list[tuple[str, str]]:
    """(version, stage) for each version whose legacy stage disagrees with the aliases."""
    wanted = {}
    for alias in ALIASES:  # production last: a version holding both aliases is in Production
        if (holder := alias_holder(client, name, alias)) is not None:
            wanted[holder] = STAGES[alias]
    fixes = []
    for mv in versions_of(client, name):
        version, stage = str(mv.version), mv.current_stage
        want = wanted.get(version, "Archived" if stage in STAGES.values() else stage)
        if stage != want:
            fixes.append((version, want))
    return sorted(fixes, key=lambda fix: int(fix[0]))


def _serving_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """The model entry minus what only matters to an experiment run, and minus credentials:
    MLflow writes model_config into MLmodel, where anyone who can read the registry reads it.
    A server that needs `user:password@` in its URL gets no credentials this way."""
    served = {k: v for k, v in entry.items() if k not in ("register_as", "name") and v is not None}
    if "base_url" in served:
        served["base_url"] = redact_url(served["base_url"])
    return served


def _read(client: Any, run_id: str, path: str) -> str:
    from pathlib import Path

    return Path(client.download_artifacts(run_id, path)).read_text()


def _parent_tag(client: Any, run: Any, key: str) -> str:
    parent = run.data.tags.get(PARENT_RUN_TAG)
    return client.get_run(parent).data.tags.get(key, "") if parent else ""


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment nor the password database
        return "unknown"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")
