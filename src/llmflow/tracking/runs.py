"""MLflow runs: a parent run per `llmflow run`, a child run per variant, written in bulk."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import LoadedExperiment
from ..errors import TrackingError
from ..plan import Variant
from ..redact import redact_url
from ..types import CallRecord

TAG_KIND = "llmflow.kind"
TAG_VARIANT = "llmflow.variant_id"
TAG_CONFIG_SHA = "llmflow.config_sha256"
TAG_VERSION = "llmflow.version"
KIND_PARENT = "experiment-run"
KIND_VARIANT = "variant"
VARIANT_ARTIFACT = "llmflow/variant.json"  # the model entry, enough to rebuild it for serving


class RunStore:
    """A thin, explicit wrapper over MlflowClient: no fluent global run state, thread-safe."""

    def __init__(self, tracking_uri: str) -> None:
        import mlflow
        from mlflow import MlflowClient

        from ..config import resolve_cache_dir
        from .sqlite_template import prepare_new_sqlite_store

        prepare_new_sqlite_store(tracking_uri, resolve_cache_dir())
        self.tracking_uri = tracking_uri
        mlflow.set_tracking_uri(tracking_uri)
        self.client = MlflowClient(tracking_uri)

    def check(self) -> None:
        """Fail early, before any paid call, when the store cannot be used."""
        try:
            self.client.search_experiments(max_results=1)
        except Exception as e:
            raise TrackingError(
                f"MLflow store {self.tracking_uri} cannot be used: {type(e).__name__}: {e}"
            ) from e

    def experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        return self.client.create_experiment(name)

    def start_parent(self, experiment_id: str, loaded: LoadedExperiment, version: str) -> str:
        tags = {
            TAG_KIND: KIND_PARENT,
            TAG_CONFIG_SHA: loaded.sha256,
            TAG_VERSION: version,
            "llmflow.config_file": loaded.path.name,
            "llmflow.task": loaded.config.task,
        }
        run = self.client.create_run(experiment_id, tags=tags, run_name=_run_name(loaded.path.stem))
        self.client.log_text(run.info.run_id, loaded.text, f"config/{loaded.path.name}")
        return run.info.run_id

    def start_variant(
        self,
        experiment_id: str,
        parent_run_id: str,
        variant: Variant,
        params: dict[str, Any],
        system: str | None = None,
    ) -> str:
        tags = {
            TAG_KIND: KIND_VARIANT,
            TAG_VARIANT: variant.id,
            "mlflow.parentRunId": parent_run_id,
            "llmflow.provider": variant.provider,
            "llmflow.model": variant.model,
        }
        if variant.swept:
            tags["llmflow.swept"] = json.dumps(variant.swept)
        run = self.client.create_run(experiment_id, tags=tags, run_name=variant.id)
        _log_params(self.client, run.info.run_id, params)
        saved = {
            "entry": variant.entry.model_dump(mode="json", exclude_none=True),
            "system": system,
        }
        self.client.log_dict(run.info.run_id, saved, VARIANT_ARTIFACT)
        return run.info.run_id

    def finish_variant(
        self, run_id: str, records: Sequence[CallRecord], metrics: dict[str, float], status: str
    ) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        ordered = sorted(records, key=lambda r: (r.case_id, r.repeat))
        self.client.log_table(run_id, data=calls_table(ordered), artifact_file="calls.json")
        self.client.log_text(run_id, responses_markdown(ordered), "responses.md")
        self.client.set_terminated(run_id, status=status)

    def finish_parent(
        self, run_id: str, artifacts: dict[str, str], status: str, journal: Path | None = None
    ) -> None:
        for path, text in artifacts.items():
            self.client.log_text(run_id, text, path)
        if journal is not None and journal.exists():
            self.client.log_artifact(run_id, str(journal), "journal")
        self.client.set_terminated(run_id, status=status)

    def reopen(self, run_ids: Sequence[str]) -> None:
        """Mark runs RUNNING again, to continue them (`llmflow run --resume`)."""
        for run_id in run_ids:
            self.client.update_run(run_id, status="RUNNING")


def variant_params(variant: Variant, task: str, cost_model: str) -> dict[str, Any]:
    """Every setting actually sent, plus what identifies the variant. Never a secret."""
    entry = variant.entry
    params: dict[str, Any] = {
        "provider": variant.provider,
        "model": variant.model,
        "task_type": task,
        "variant_id": variant.id,
        "cost_model": cost_model,
        "timeout_s": entry.timeout_s,
        "max_retries": entry.max_retries,
        **variant.settings.sent(),
    }
    params.setdefault("temperature", "default")
    params.setdefault("max_tokens", "default")
    if entry.base_url:
        params["base_url"] = redact_url(entry.base_url)
    if entry.api_key_env:
        params["api_key_env"] = entry.api_key_env  # the variable's name, not its value
    for name in ("prompt_template", "n_threads", "n_ctx", "max_concurrency", "register_as"):
        if (value := getattr(entry, name)) is not None:
            params[name] = value
    return params


def calls_table(records: Sequence[CallRecord]) -> dict[str, list[Any]]:
    """One row per call, as columns for mlflow.log_table."""
    columns: dict[str, list[Any]] = {
        name: []
        for name in (
            "case",
            "repeat",
            "prompt",
            "response",
            "error",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "latency_s",
            "ttft_s",
            "cost_usd",
            "cost_kind",
            "cached",
            "attempts",
        )
    }
    for r in records:
        usage = r.usage
        row = {
            "case": r.case_id,
            "repeat": r.repeat,
            "prompt": _prompt_text(r),
            "response": r.completion.text if r.completion else None,
            "error": f"{r.error_type}: {r.error_message}" if r.error_type else None,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "latency_s": r.timing.latency_s if r.timing else None,
            "ttft_s": r.timing.ttft_s if r.timing else None,
            "cost_usd": r.cost.usd if r.cost else None,
            "cost_kind": r.cost.kind if r.cost else None,
            "cached": r.cached,
            "attempts": r.attempts,
        }
        for name, value in row.items():
            columns[name].append(value)
    return columns


def responses_markdown(records: Sequence[CallRecord]) -> str:
    lines = []
    for r in records:
        lines.append(f"## {r.case_id} (repeat {r.repeat})\n")
        for message in r.messages:
            lines.append(f"**{message.role}:** {message.content}\n")
        if r.completion:
            lines.append(f"**assistant:** {r.completion.text}\n")
        else:
            lines.append(f"**error:** {r.error_type}: {r.error_message}\n")
    return "\n".join(lines)


def _prompt_text(record: CallRecord) -> str:
    return "\n\n".join(f"[{m.role}] {m.content}" for m in record.messages)


def _log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    values = [Param(k, _param_value(v)) for k, v in params.items()]
    client.log_batch(run_id, params=values)


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text[:6000]


def _run_name(stem: str) -> str:
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
