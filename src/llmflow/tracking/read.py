"""Runs read back: the one reader of what llmflow wrote (tracking/schema.py names it). A sweep's
variants as comparison rows (rows.py), each variant's calls.json as call rows, its
classification table. A local sqlite store is read without MLflow first (sqlite_read.py, where
it can answer for certain), else through MLflow's client."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import LlmflowError
from ..rows import Comparison, ComparisonRow, build_row
from .artifacts import read_json
from .experiments import experiment_named
from .run_lookup import resolve_run
from .schema import (
    CALLS_TABLE,
    CLASSIFICATION,
    KIND_PARENT,
    KIND_VARIANT,
    PARENT_RUN_TAG,
    TAG_CONFIG_SHA,
    TAG_COST_KIND,
    TAG_KIND,
    TAG_SKIPPED,
    TAG_SWEPT,
    TAG_VARIANT,
)
from .sqlite_read import read_calls_tables, read_variants


@dataclass(frozen=True)
class CallsTable:
    """A variant run's calls.json as stored (mlflow.log_table's layout: column names, then one
    list of values per call), read the same way wherever it comes from."""

    columns: list[str]
    data: list[list[Any]]

    @classmethod
    def of(cls, stored: dict[str, Any] | None) -> CallsTable | None:
        return None if stored is None else cls(list(stored["columns"]), stored["data"])

    @classmethod
    def of_columns(cls, columns: dict[str, list[Any]]) -> CallsTable:
        """A table as tracking/calls_table.py builds one to write ({column: its values})."""
        return cls(list(columns), [list(row) for row in zip(*columns.values(), strict=True)])

    def rows(self) -> list[dict[str, Any]]:
        """One dict per call."""
        return list(self.iter_rows())

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        """One dict per call, made as they are read: a dict per call of a 100,000-call table,
        all at once, is some 200 MB."""
        for values in self.data:
            yield dict(zip(self.columns, values, strict=True))

    def as_columns(self) -> dict[str, list[Any]]:
        """{column: its values}, as tracking/calls_table.py builds a table to write."""
        return {name: [row[i] for row in self.data] for i, name in enumerate(self.columns)}


def row_from(
    run_id: str, params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]
) -> ComparisonRow:
    """A variant run's comparison row from its params, metrics and tags."""
    return build_row(
        run_id,
        params,
        metrics,
        variant_id=tags.get(TAG_VARIANT, ""),
        swept=json.loads(tags[TAG_SWEPT]) if TAG_SWEPT in tags else None,
        skipped=tags.get(TAG_SKIPPED),
        pricing=tags.get(TAG_COST_KIND),
    )


def read_comparison(client: Any, experiment: str, run_id: str | None = None) -> Comparison:
    """The variants of one `llmflow run` (the latest, unless run_id, or a unique prefix of it,
    names one), through MLflow."""
    exp = experiment_named(client, experiment)
    if run_id is None:
        parents = client.search_runs(
            [exp.experiment_id],
            filter_string=f"tags.`{TAG_KIND}` = '{KIND_PARENT}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not parents:
            raise LlmflowError(
                f"experiment {experiment!r} has no llmflow run yet: run `llmflow run`"
            )
        run_id = parents[0].info.run_id
    else:
        run_id = resolve_run(client, run_id, KIND_PARENT, exp)
    children = variant_runs(client, exp.experiment_id, run_id)
    if not children:
        raise LlmflowError(f"run {run_id} of {experiment!r} has no variant runs")
    stored = [(r.info.run_id, r.data.params, r.data.metrics, r.data.tags) for r in children]
    return _comparison(experiment, run_id, stored)


def comparison_at(
    tracking_uri: str, experiment: str, run_id: str | None, client: Callable[[], Any]
) -> Comparison:
    """read_comparison, from a local sqlite store directly where it can (MLflow's import alone
    takes seconds), else through the MLflow client that `client()` opens."""
    found = sqlite_comparison(tracking_uri, experiment, run_id)
    return found if found is not None else read_comparison(client(), experiment, run_id)


def sqlite_comparison(tracking_uri: str, experiment: str, run_id: str | None) -> Comparison | None:
    """The comparison read from a local sqlite store without MLflow; None where MLflow should
    be asked (sqlite_read.py says when)."""
    found = read_variants(tracking_uri, experiment, run_id)
    return None if found is None else _comparison(experiment, *found)


def _comparison(experiment: str, parent_run_id: str, stored: list[tuple]) -> Comparison:
    rows = sorted((row_from(*run) for run in stored), key=lambda r: r.variant_id)
    return Comparison(experiment=experiment, parent_run_id=parent_run_id, rows=tuple(rows))


def previous_run_id(client: Any, experiment: str, run_id: str) -> str:
    """The run of the same experiment file (same hash) that started just before run_id."""
    exp = client.get_experiment_by_name(experiment)
    current = client.get_run(run_id)
    sha = current.data.tags.get(TAG_CONFIG_SHA)
    earlier = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`{TAG_KIND}` = '{KIND_PARENT}' and tags.`{TAG_CONFIG_SHA}` = '{sha}' "
        f"and attributes.start_time < {current.info.start_time}",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not earlier:
        raise LlmflowError(f"run {run_id} has no earlier run of the same experiment file")
    return earlier[0].info.run_id


def variant_runs(client: Any, experiment_id: str, parent_run_id: str) -> list[Any]:
    """The parent's variant runs, in the order they started."""
    return client.search_runs(
        [experiment_id],
        filter_string=(
            f"tags.`{PARENT_RUN_TAG}` = '{parent_run_id}' and tags.`{TAG_KIND}` = '{KIND_VARIANT}'"
        ),
        order_by=["attributes.start_time ASC"],
        max_results=10_000,
    )


def calls_table(client: Any, run_id: str) -> CallsTable | None:
    """A variant run's calls.json; None for a run killed before it was written."""
    return CallsTable.of(read_json(client, run_id, CALLS_TABLE))


def call_rows(client: Any, run_id: str) -> Iterator[dict[str, Any]]:
    """A variant run's calls, one dict per call as they are read; none for a run without its
    table."""
    table = calls_table(client, run_id)
    return iter(()) if table is None else table.iter_rows()


def call_rows_at(
    tracking_uri: str, run_ids: list[str]
) -> dict[str, Iterator[dict[str, Any]]] | None:
    """call_rows of each run, from a local artifact folder without MLflow; None when any run
    keeps its artifacts elsewhere (then ask call_rows)."""
    found = read_calls_tables(tracking_uri, run_ids)
    if found is None:
        return None
    return {
        run: iter(()) if (t := CallsTable.of(stored)) is None else t.iter_rows()
        for run, stored in found.items()
    }


def classification_table(client: Any, run_id: str) -> dict[str, Any] | None:
    """A variant run's classification.json (per-label table, confusion matrix); None when it
    has none (another task, or a run ended before its tables were written)."""
    return read_json(client, run_id, CLASSIFICATION)
