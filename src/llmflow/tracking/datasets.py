"""MLflow evaluation datasets as prompt sets: read one for a run (`prompts: {mlflow_dataset:
NAME}`), push a prompts file into one (`llmflow dataset push`). How a record maps to a prompt:
dataset_rows.py. MLflow keeps evaluation datasets in SQL stores only (sqlite, PostgreSQL,
MySQL, or an `mlflow server` on one)."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..redact import redact_url
from ..user_files import shorten
from . import dataset_rows as rows
from .fluent import fluent_store

if TYPE_CHECKING:
    from ..config import DatasetPrompts, PromptCase

_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
_SERVERS = ("http", "https", "databricks")


@dataclass(frozen=True)
class PushResult:
    dataset_id: str
    created: bool
    added: int  # prompts new to the dataset, or changed (their record replaced)
    unchanged: int
    removed: int  # records of ids no longer in the file (--prune only)
    digest: str  # the dataset's digest after the push: pin it with `digest:`


def read_dataset(
    tracking_uri: str, ref: DatasetPrompts, field: str
) -> tuple[tuple[PromptCase, ...], str]:
    """The dataset's rows as prompts, in the order pushed, and the dataset's id. ConfigError
    (one line naming `field`) for a store without datasets, a missing or changed dataset or a
    row that holds no prompt."""
    require_sql_store(tracking_uri, field)
    with _mlflow_quiet(tracking_uri):
        dataset = _get(tracking_uri, ref.mlflow_dataset, field, ref.version)
        if ref.digest is not None and dataset.digest != ref.digest:
            raise ConfigError(
                f"{field}: dataset {shorten(ref.mlflow_dataset)} has digest {dataset.digest}, "
                f"not {ref.digest}: it changed since it was pinned"
            )
        records = dataset.to_df().to_dict("records")
    if not records:
        raise ConfigError(f"{field}: dataset {shorten(ref.mlflow_dataset)} has no records")
    shown = f"{field}: dataset {shorten(ref.mlflow_dataset)}"
    cases = tuple(rows.case_of(record, shown) for record in rows.ordered(records))
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise ConfigError(f"{shown}: two records have prompt id {shorten(case.id)}")
        seen.add(case.id)
    return cases, dataset.dataset_id


def push_prompts(
    tracking_uri: str,
    cases: Sequence[PromptCase],
    name: str,
    experiment_id: str | None = None,
    prune: bool = False,
    source: str = "prompts",
) -> PushResult:
    """Create the dataset `name` or update it so that each prompt's record (found by the id it
    keeps in a tag) says what the prompt says; other records stay unless `prune`."""
    require_sql_store(tracking_uri, "--tracking-uri")
    _refuse_merged_rows(cases, source)
    wanted = [rows.record_of(case, i) for i, case in enumerate(cases)]
    with _mlflow_quiet(tracking_uri):
        from mlflow.genai import datasets

        created = _find(name, "--name") is None
        if created:
            ids = [experiment_id] if experiment_id else None
            dataset = datasets.create_dataset(name=name, experiment_id=ids)
        else:
            dataset = datasets.get_dataset(name=name)
        plan = rows.plan_push(dataset.to_df().to_dict("records"), wanted, prune)
        if plan.stale:
            dataset.delete_records(plan.stale)
        if plan.merged:  # a record of the same inputs takes the new tags in place: moved ones
            dataset.merge_records(plan.merged)
        digest = datasets.get_dataset(dataset_id=dataset.dataset_id).digest
    written = plan.written
    return PushResult(
        dataset.dataset_id, created, written, len(wanted) - written, plan.removed, digest
    )


def require_sql_store(tracking_uri: str, field: str) -> None:
    """ConfigError unless the store can keep evaluation datasets (a server is asked then)."""
    scheme = tracking_uri.partition(":")[0].partition("+")[0].lower()
    if scheme in _SQL_SCHEMES or scheme in _SERVERS:
        return
    raise ConfigError(
        f"{field}: MLflow keeps evaluation datasets in a SQL store only (sqlite:///mlflow.db, "
        f"postgresql://..., or an mlflow server on one), not {redact_url(tracking_uri)}"
    )


def _refuse_merged_rows(cases: Sequence[PromptCase], source: str) -> None:
    """MLflow keeps one record per distinct inputs: two prompts with the same messages would
    become one record, and a prompt would be lost."""
    first: dict[tuple[str, str | None], str] = {}
    for case in cases:
        key = (case.user, case.system)
        if key in first:
            raise ConfigError(
                f"{source}: prompts {shorten(first[key])} and {shorten(case.id)} have the same "
                "user and system messages: an MLflow dataset keeps one record per distinct inputs"
            )
        first[key] = case.id


def _get(tracking_uri: str, name: str, field: str, version: int | None) -> Any:
    from mlflow.genai import datasets

    if version is not None and not tracking_uri.startswith("databricks"):
        raise ConfigError(
            f"{field}.version: MLflow keeps dataset versions on Databricks only; pin the "
            "dataset's digest instead (digest: ..., printed by llmflow dataset push)"
        )
    if (found := _find(name, field)) is None:
        raise ConfigError(
            f"{field}: no MLflow evaluation dataset named {shorten(name)} in "
            f"{redact_url(tracking_uri)} (llmflow dataset push PROMPTS_FILE --name ... makes one)"
        )
    return found if version is None else datasets.get_dataset(name=name, version=version)


def _find(name: str, field: str) -> Any | None:
    """The dataset of that name; None when there is none. A store that keeps none (a server on
    a file store) or two of that name: ConfigError."""
    from mlflow.exceptions import MlflowException
    from mlflow.genai import datasets

    try:
        return datasets.get_dataset(name=name)
    except MlflowException as e:
        if e.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise ConfigError(f"{field}: {_first_line(e)}") from e
    except NotImplementedError as e:
        raise ConfigError(f"{field}: this store keeps no evaluation datasets: {e}") from e


def _first_line(e: Exception) -> str:
    return shorten(str(e.args[0] if e.args else e).strip().splitlines()[0], 300)


@contextlib.contextmanager
def _mlflow_quiet(tracking_uri: str) -> Iterator[None]:
    """The store for MLflow's dataset API (it has no client twin), its warnings and progress
    lines kept off the user's terminal."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stderr(io.StringIO()),
        fluent_store(tracking_uri),
    ):
        warnings.simplefilter("ignore")
        yield
