"""The Model Registry: a variant run -> a pyfunc model -> a registered version -> aliases.

Promotion moves an alias (`staging`, `production`) and, for tools that still read them, the
legacy stage (archiving the version that held it). Every promotion is written on the version
as a tag `llmflow.promotion.<epoch ms>` so that history can be rebuilt from MLflow alone.
"""

from __future__ import annotations

import contextlib
import getpass
import io
import json
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Any

from .. import __version__, gates
from ..errors import LlmflowError
from .runs import KIND_VARIANT, TAG_KIND, VARIANT_ARTIFACT

ALIASES = ("staging", "production")
STAGES = {"staging": "Staging", "production": "Production"}
RECORDED_METRICS = (
    "latency_s",
    "latency_p50_s",
    "latency_p95_s",
    "ttft_p50_s",
    "total_tokens",
    "output_tokens",
    "estimated_cost_usd",
    "error_rate",
    "n_calls",
    "n_errors",
)
PROMOTION_PREFIX = "llmflow.promotion."
SDK_REQUIREMENT = {
    "gemini": "google-genai",
    "ollama": "ollama",
    "openai": "openai",
    "local": "llama-cpp-python",
}


class PromotionRefused(LlmflowError):
    """A gate failed or the path to production skipped staging. `reasons` has one line each."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def default_name(provider: str, task: str) -> str:
    return f"llm_{provider}_{task}"


def register_run(client: Any, run_id: str, name: str | None = None, gates_from_file=()) -> Any:
    """Log the variant run's configuration as a pyfunc model and register a new version."""
    import mlflow

    run = client.get_run(run_id)
    if run.data.tags.get(TAG_KIND) != KIND_VARIANT:
        raise LlmflowError(f"run {run_id} is not an llmflow variant run")
    saved = json.loads(_read(client, run_id, VARIANT_ARTIFACT))
    entry = saved["entry"]
    params, metrics = run.data.params, run.data.metrics
    provider, task = params["provider"], params.get("task_type", "chat")
    name = name or entry.get("register_as") or default_name(provider, task)
    config = {"entry": _serving_entry(entry), "system": saved.get("system")}
    script = resources.files("llmflow.serving") / "model_script.py"
    # MLflow prints its own "Successfully registered" lines and schema hints to stderr; the
    # caller reports the registration in its own words
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        with mlflow.start_run(run_id=run_id):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(script),
                model_config=config,
                pip_requirements=[f"llmflow=={__version__}", SDK_REQUIREMENT[provider], "mlflow"],
            )
        version = mlflow.register_model(info.model_uri, name, await_registration_for=0)
    # start_run(run_id=...) reopened the run and ended it FINISHED: keep its own status
    client.set_terminated(run_id, status=run.info.status)
    tags = {
        "llmflow.source_run_id": run_id,
        "llmflow.parent_run_id": run.data.tags.get("mlflow.parentRunId", ""),
        "llmflow.config_sha256": _parent_tag(client, run, "llmflow.config_sha256"),
        "llmflow.provider": provider,
        "llmflow.model": params.get("model", ""),
        "llmflow.variant_id": run.data.tags.get("llmflow.variant_id", ""),
        "llmflow.gates": json.dumps(list(gates_from_file)),
        **{f"metric.{k}": repr(metrics[k]) for k in RECORDED_METRICS if k in metrics},
    }
    for key, value in tags.items():
        client.set_model_version_tag(name, version.version, key, value)
    client.set_registered_model_tag(name, "llmflow.provider", provider)
    return client.get_model_version(name, version.version)


def promote(
    client: Any,
    name: str,
    version: str,
    to: str,
    require: list[str] = (),
    force: bool = False,
) -> dict[str, Any]:
    """Check the gates, then move the alias and the legacy stage. Returns the record written."""
    if to not in ALIASES:
        raise LlmflowError(f"--to must be one of {', '.join(ALIASES)}")
    mv = client.get_model_version(name, version)
    rules = list(require) + json.loads(mv.tags.get("llmflow.gates", "[]"))
    passed, failures = gates.check(rules, recorded_metrics(mv))
    if to == "production" and not force and not _was_in(mv, "staging"):
        failures.append(
            f"version {version} has never been in staging: promote it there first, or pass --force"
        )
    if failures:
        raise PromotionRefused(failures)
    previous = _holder(client, name, to)
    client.set_registered_model_alias(name, to, version)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stages are deprecated in MLflow; the seed reads them
        client.transition_model_version_stage(
            name, version, STAGES[to], archive_existing_versions=True
        )
    now = time.time()
    record = {
        "to": to,
        "version": str(version),
        "previous_version": previous,
        "previous_stage": mv.current_stage,
        "by": _who(),
        "at": _iso(now),
        "gates": passed,
        "forced": force,
    }
    client.set_model_version_tag(
        name, version, f"{PROMOTION_PREFIX}{int(now * 1000)}", json.dumps(record)
    )
    return record


def history(client: Any, name: str) -> list[dict[str, Any]]:
    """Every promotion of every version of `name`, oldest first."""
    stamped = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        for key, value in mv.tags.items():
            if key.startswith(PROMOTION_PREFIX):
                stamped.append((int(key.removeprefix(PROMOTION_PREFIX)), json.loads(value)))
    if not stamped and not client.search_registered_models(f"name = '{name}'"):
        raise LlmflowError(f"no registered model named {name!r}")
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


def list_versions(client: Any) -> list[VersionSummary]:
    out = []
    for model in client.search_registered_models():
        for found in client.search_model_versions(f"name = '{model.name}'"):
            mv = client.get_model_version(found.name, found.version)  # search omits aliases
            out.append(
                VersionSummary(
                    name=mv.name,
                    version=str(mv.version),
                    aliases=tuple(mv.aliases or ()),
                    stage=mv.current_stage,
                    provider=mv.tags.get("llmflow.provider", ""),
                    model=mv.tags.get("llmflow.model", ""),
                    metrics=recorded_metrics(mv),
                    source_run_id=mv.tags.get("llmflow.source_run_id", mv.run_id or ""),
                )
            )
    return sorted(out, key=lambda v: (v.name, int(v.version)))


def recorded_metrics(mv: Any) -> dict[str, float]:
    return {
        k.removeprefix("metric."): float(v) for k, v in mv.tags.items() if k.startswith("metric.")
    }


def _was_in(mv: Any, alias: str) -> bool:
    return any(
        json.loads(v).get("to") == alias
        for k, v in mv.tags.items()
        if k.startswith(PROMOTION_PREFIX)
    )


def _holder(client: Any, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except Exception:  # MLflow raises when the alias is unset
        return None


def _serving_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """The model entry minus what only matters to an experiment run."""
    return {k: v for k, v in entry.items() if k not in ("register_as", "name") and v is not None}


def _read(client: Any, run_id: str, path: str) -> str:
    from pathlib import Path

    return Path(client.download_artifacts(run_id, path)).read_text()


def _parent_tag(client: Any, run: Any, key: str) -> str:
    parent = run.data.tags.get("mlflow.parentRunId")
    return client.get_run(parent).data.tags.get(key, "") if parent else ""


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="seconds")
