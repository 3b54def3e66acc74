"""MLflow runs: a parent run per `llmflow run`, a child run per variant, written in bulk."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from ..config import LoadedExperiment
from ..errors import LlmflowError, RunFailed, TrackingError
from ..plan import Variant
from ..pricing import cost_kind_of
from ..redact import one_line, redact_text, redact_url
from ..types import CallRecord
from .calls_table import calls_table, responses_lines
from .eval_view import share_datasets
from .run_inputs import log_inputs
from .schema import (  # TAG_KIND, KIND_* and TAG_VARIANT: also imported from here by old code
    CALLS_TABLE,
    CONFIG_DIR,
    KIND_PARENT,
    KIND_VARIANT,
    PARENT_RUN_TAG,
    RESPONSES,
    TAG_CONFIG_FILE,
    TAG_CONFIG_SHA,
    TAG_COST_KIND,
    TAG_KIND,
    TAG_MODEL,
    TAG_PROVIDER,
    TAG_SWEPT,
    TAG_TASK,
    TAG_VARIANT,
    TAG_VERSION,
    VARIANT_ENTRY,
)
from .uri import sqlite_file

if TYPE_CHECKING:
    from ..prompt_set import PromptSetFile
    from ..scoring import Score


_REACH_TIMEOUT_S = 5.0


def open_store(tracking_uri: str, create: bool = True) -> RunStore:
    """The store, checked: a server that does not answer, a file that is not a database, a
    folder that cannot be written each fail here with one line, before any run or call. With
    create=False (a command that reads runs), a sqlite file that does not exist fails too,
    rather than MLflow creating an empty store wherever the command was typed."""
    shown = redact_url(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        _check_reachable(shown)
    elif (path := sqlite_file(tracking_uri)) is not None:
        if not create and not path.exists():
            raise TrackingError(
                f"no MLflow store at {path} (only `llmflow run` and `llmflow dataset push` make "
                "one): run this where the runs were made, or give their store with --tracking-uri"
            )
        _check_sqlite_file(path, shown)
    try:
        store = RunStore(tracking_uri)
        store.check()
    except TrackingError:
        raise
    except Exception as e:
        raise TrackingError(f"MLflow store {shown} cannot be used: {one_line(e)}") from e
    return store


def _check_reachable(url: str) -> None:
    """A few seconds, not MLflow's minutes of HTTP retries, to learn that nothing answers.
    /health needs no credentials, so the URL goes without them."""
    import ssl
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=_REACH_TIMEOUT_S):
            return
    except urllib.error.HTTPError:
        return  # something answers; MLflow's own calls will say what is wrong with it
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ssl.SSLError):
            # a server answers; MLflow's client trusts what urllib may not (its own CA bundle,
            # MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_INSECURE_TLS)
            return
        raise TrackingError(
            f"MLflow server {url} is not reachable ({reason}): start it, "
            "or pass another --tracking-uri"
        ) from e


def _check_sqlite_file(path: Path, shown: str) -> None:
    """What MLflow would otherwise retry for minutes, or answer with a traceback."""
    problem = None
    if path.is_dir():
        problem = "is a folder, not a database file"
    elif path.exists():
        with path.open("rb") as file:
            header = file.read(16)
        if header and header != b"SQLite format 3\x00":
            problem = "is not an SQLite database"
        elif not os.access(path, os.W_OK):
            problem = "is read-only"
    elif not path.parent.is_dir():
        problem = f"cannot be created: the folder {path.parent} does not exist"
    elif not os.access(path.parent, os.W_OK):
        problem = f"cannot be created: the folder {path.parent} is not writable"
    if problem:
        raise TrackingError(f"MLflow store {shown}: {path} {problem}")


class RunStore:
    """A thin, explicit wrapper over MlflowClient: no fluent global run state, thread-safe."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow import MlflowClient

        from ..config.environment import resolve_cache_dir
        from .sqlite_template import prepare_new_sqlite_store

        prepare_new_sqlite_store(tracking_uri, resolve_cache_dir())
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)

    def check(self) -> None:
        """Fail early, before any paid call, when the store cannot be used."""
        try:
            self.client.search_experiments(max_results=1)
        except Exception as e:
            raise TrackingError(
                f"MLflow store {redact_url(self.tracking_uri)} cannot be used: {one_line(e)}"
            ) from e

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created if need be, with llmflow's view of its Traces tab."""
        from .trace_view import add_trace_view

        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            created = self._create_experiment(name)
            if created is not None:
                add_trace_view(self.client, created, {})
                return created
            experiment = self.client.get_experiment_by_name(name)
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(
                f"MLflow experiment {name!r} is deleted: restore it "
                f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) "
                "or name another experiment in the file"
            )
        add_trace_view(self.client, experiment.experiment_id, experiment.tags)
        return experiment.experiment_id

    def _create_experiment(self, name: str) -> str | None:
        """The new experiment's id; None when another client created it first (several
        `llmflow run` processes starting at once against one server)."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(name)
        except MlflowException as e:
            if e.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return None

    def start_parent(
        self,
        experiment_id: str,
        loaded: LoadedExperiment,
        prompt_set: PromptSetFile,
        version: str,
    ) -> str:
        tags = {
            TAG_KIND: KIND_PARENT,
            TAG_CONFIG_SHA: loaded.sha256,
            TAG_VERSION: version,
            TAG_CONFIG_FILE: loaded.path.name,
            TAG_TASK: loaded.config.task,
        }
        run = self.client.create_run(experiment_id, tags=tags, run_name=_run_name(loaded.path.stem))
        try:  # the first artifact: a store whose artifact location cannot be written fails here
            self.client.log_text(
                run.info.run_id, redact_text(loaded.text), f"{CONFIG_DIR}/{loaded.path.name}"
            )
            log_inputs(self.client, run.info.run_id, loaded, prompt_set)
        except Exception as e:
            self.client.set_terminated(run.info.run_id, status="FAILED")
            raise TrackingError(
                f"cannot write artifacts of MLflow run {run.info.run_id} "
                f"({redact_url(run.info.artifact_uri)}): {type(e).__name__}: {e}"
            ) from e
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
            PARENT_RUN_TAG: parent_run_id,
            TAG_PROVIDER: variant.provider,
            TAG_MODEL: variant.model,
            TAG_COST_KIND: cost_kind_of(variant.entry),
        }
        if variant.swept:
            tags[TAG_SWEPT] = json.dumps(variant.swept)
        run = self.client.create_run(experiment_id, tags=tags, run_name=variant.id)
        _log_params(self.client, run.info.run_id, params)
        entry = variant.entry.model_dump(mode="json", exclude_none=True)
        if "base_url" in entry:
            entry["base_url"] = redact_url(entry["base_url"])
        saved = {"entry": entry, "system": system}
        self.client.log_dict(run.info.run_id, saved, VARIANT_ENTRY)
        return run.info.run_id

    def finish_variant(
        self,
        run_id: str,
        records: Iterable[CallRecord],
        metrics: dict[str, float],
        status: str,
        scores: dict[tuple[str, int], list[Score]] | None = None,
        in_order: bool = False,
    ) -> dict[str, list[Any]]:
        """Metrics, calls.json (with a column per check and `passed` when scores are given),
        responses.md, then the run's end; the calls table written. `records` already sorted by
        (case, repeat) (`in_order`) are read as they come, each pass: they may be read back
        from disk rather than held."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()])
        ordered = records if in_order else sorted(records, key=lambda r: (r.case_id, r.repeat))
        table = calls_table(ordered)
        if scores is not None:
            from ..scoring.tables import add_score_columns

            add_score_columns(table, ordered, scores)
        self.log_table(run_id, table, CALLS_TABLE)
        self._log_responses(run_id, ordered)
        self.client.set_terminated(run_id, status=status)
        return table

    def _log_responses(self, run_id: str, ordered: Iterable[CallRecord]) -> None:
        """responses.md, written to a file as the calls are read (100,000 calls make a text of
        tens of MB, which log_text would hold whole)."""
        with tempfile.TemporaryDirectory(prefix="llmflow-responses-") as into:
            path = Path(into) / RESPONSES
            with path.open("w", encoding="utf-8") as file:
                for index, line in enumerate(responses_lines(ordered)):
                    file.write(f"\n{line}" if index else line)
            self.client.log_artifact(run_id, str(path))

    def log_table(self, run_id: str, columns: dict[str, list[Any]], artifact_file: str) -> None:
        """The table in `mlflow.log_table`'s format, written whole: log_table appends to an
        existing file, which would duplicate rows when a resumed run is finished again."""
        from .mlflow_compat import logged_artifacts_tag

        MLFLOW_LOGGED_ARTIFACTS = logged_artifacts_tag()  # noqa: N806 - MLflow's name for it
        artifact = PurePosixPath(artifact_file)
        folder = None if artifact.parent == PurePosixPath(".") else str(artifact.parent)
        with tempfile.TemporaryDirectory(prefix="llmflow-table-") as into:
            path = Path(into) / artifact.name
            _write_table(columns, path)
            self.client.log_artifact(run_id, str(path), folder)
        tags = self.client.get_run(run_id).data.tags
        logged = json.loads(tags.get(MLFLOW_LOGGED_ARTIFACTS, "[]"))
        entry = {"path": artifact_file, "type": "table"}
        if entry not in logged:
            self.client.set_tag(run_id, MLFLOW_LOGGED_ARTIFACTS, json.dumps([*logged, entry]))

    def finish_parent(
        self,
        run_id: str,
        artifacts: dict[str, str],
        status: str,
        journal: Path | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        if metrics:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client.log_batch(
                run_id, metrics=[Metric(k, v, now, 0) for k, v in metrics.items()]
            )
        for path, text in artifacts.items():
            self.client.log_text(run_id, text, path)
        if journal is not None and journal.exists():
            self.client.log_artifact(run_id, str(journal), "journal")
        self.client.set_terminated(run_id, status=status)

    def open_runs(
        self,
        experiment_id: str,
        loaded: LoadedExperiment,
        prompt_set: PromptSetFile,
        variants: Sequence[tuple[Variant, dict[str, Any]]],
        system: str | None,
        version: str,
    ) -> tuple[str, dict[str, str]]:
        """A new parent run and a run per (variant, params). If the store fails halfway, those
        already opened are ended as FAILED, never left RUNNING."""
        parent_id = self.start_parent(experiment_id, loaded, prompt_set, version)
        run_ids: dict[str, str] = {}
        try:
            params = parent_params(loaded, prompt_set.rows, len(variants))
            _log_params(self.client, parent_id, params)
            for variant, params in variants:
                run_ids[variant.id] = self.start_variant(
                    experiment_id, parent_id, variant, params, system
                )
            share_datasets(self.client, parent_id, run_ids.values())
        except Exception as e:
            self.end_runs([parent_id, *run_ids.values()], "FAILED")
            raise RunFailed(parent_id, e) from e
        return parent_id, run_ids

    def check_resumable(self, parent_id: str, experiment: str) -> None:
        """Resuming a run that already finished would change it: refuse, change nothing."""
        if self.client.get_run(parent_id).info.status == "FINISHED":
            raise LlmflowError(
                f"run {parent_id} already finished: nothing to resume "
                f"(llmflow compare -e {experiment!r} --run {parent_id})"
            )

    def reopen(self, parent_id: str, run_ids: Sequence[str]) -> None:
        """Mark the runs RUNNING again, to continue them (`llmflow run --resume`); if the store
        fails, they are ended as FAILED."""
        opened = [parent_id, *run_ids]
        try:
            for run_id in opened:
                self.client.update_run(run_id, status="RUNNING")
        except Exception as e:
            self.end_runs(opened, "FAILED")
            raise RunFailed(parent_id, e) from e

    def end_runs(self, run_ids: Sequence[str], status: str) -> None:
        """Best effort, for a store that is failing or a user who is leaving: every run is
        tried, whatever the others do."""
        for run_id in run_ids:
            with contextlib.suppress(Exception):
                self.client.set_terminated(run_id, status=status)


def _write_table(columns: dict[str, list[Any]], path: Path) -> None:
    """{"columns": [...], "data": [[...], ...]} (log_dict's JSON, values it cannot write as
    text), a row at a time: 100,000 rows, made whole first, cost the worker 20 MB more."""
    with path.open("w", encoding="utf-8") as out:
        out.write(f'{{"columns": {json.dumps(list(columns))}, "data": [')
        for index, row in enumerate(zip(*columns.values(), strict=True)):
            out.write(("," if index else "") + "\n" + json.dumps(row, default=str))
        out.write("\n]}\n")


def parent_params(loaded: LoadedExperiment, n_prompts: int, n_variants: int) -> dict[str, Any]:
    """What the parent run's row in the runs table says of the whole run."""
    config = loaded.config
    return {
        "task_type": config.task,
        "n_variants": n_variants,
        "n_prompts": n_prompts,
        "repeats": config.repeats,
        "warmup": config.warmup,
        "config_file": loaded.path.name,
    }


def variant_params(
    variant: Variant, task: str, cost_model: str, train_sha256: str | None = None
) -> dict[str, Any]:
    """Every setting actually sent, plus what identifies the variant (a trained model: the
    sha256 of its training file). Never a secret."""
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
    if entry.train is not None:
        params["train"] = Path(entry.train).name
        if train_sha256 is not None:
            params["train_sha256"] = train_sha256
    return params


def _log_params(client: Any, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    values = [Param(k, _param_value(v)) for k, v in params.items()]
    client.log_batch(run_id, params=values)


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text[:6000]


def _run_name(stem: str) -> str:
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
