"""A run's variants read straight from a local sqlite MLflow store, without importing MLflow: the
fast path of tracking/read.py.

`llmflow compare` is run often, and its table is a few small queries; importing MLflow and
opening its SQLAlchemy store costs seconds. This reader mirrors what `read_comparison` asks
MLflow for (active runs of the experiment, the latest parent, its variant runs' params,
latest metrics and tags) in the same tables MLflow reads; a run named by a prefix of its id is
found as tracking/run_lookup.py finds it. Whatever it cannot answer for certain (no file,
another schema, an unknown experiment, a prefix that names no run or several, a run without
variants) gives None, and the caller asks MLflow, which also words the error.
"""

from __future__ import annotations

import json
import math
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlparse

from ..run_ids import normalised
from .schema import CALLS_TABLE, KIND_PARENT, KIND_VARIANT, PARENT_RUN_TAG, TAG_KIND
from .uri import sqlite_file

StoredRun = tuple[
    str, dict[str, str], dict[str, float], dict[str, str]
]  # id, params, metrics, tags
_LATEST_PARENT = (
    "SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid"
    " WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' AND t.key = ? AND t.value = ?"
    " ORDER BY r.start_time DESC, r.run_uuid LIMIT 1"
)
_PARENT_PREFIX = (
    "SELECT r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid"
    " WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' AND t.key = ? AND t.value = ?"
    " AND r.run_uuid LIKE ? LIMIT 2"
)
# the variant runs of one parent, as read.py's variant_runs filter selects them
_CHILDREN = (
    "SELECT r.run_uuid FROM runs r"
    " JOIN tags p ON p.run_uuid = r.run_uuid AND p.key = ?"
    " JOIN tags k ON k.run_uuid = r.run_uuid AND k.key = ?"
    " WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' AND p.value = ? AND k.value = ?"
)


def read_variants(
    tracking_uri: str, experiment: str, run_id: str | None
) -> tuple[str, list[StoredRun]] | None:
    """The parent run's id and its variant runs (in the order they started), or None where
    MLflow should be asked instead."""
    path = _database_file(tracking_uri)
    if path is None:
        return None
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as db:
            return _read(db, experiment, run_id)
    except sqlite3.Error:  # locked, another schema, not a database: MLflow will say
        return None


def _database_file(tracking_uri: str) -> Path | None:
    """The file of an absolute `sqlite:////path` URI that exists; None for anything else (a
    query's options are MLflow's to apply)."""
    path = sqlite_file(tracking_uri)
    if path is None or "?" in tracking_uri or not path.is_absolute():
        return None
    return path if path.is_file() else None


def _read(
    db: sqlite3.Connection, experiment: str, run_id: str | None
) -> tuple[str, list[StoredRun]] | None:
    experiment_id = _experiment_id(db, experiment)
    if experiment_id is None:
        return None
    run_id = _parent_id(db, experiment_id, run_id)
    if run_id is None:
        return None
    children = (PARENT_RUN_TAG, TAG_KIND, experiment_id, run_id, KIND_VARIANT)
    runs = [
        run for (run,) in db.execute(_CHILDREN + " ORDER BY r.start_time, r.run_uuid", children)
    ]
    if not runs:
        return None
    params = _by_run(db, "SELECT run_uuid, key, value FROM params", children)
    tags = _by_run(db, "SELECT run_uuid, key, value FROM tags", children)
    metrics = _by_run(
        db,
        "SELECT run_uuid, key, CASE WHEN is_nan THEN NULL ELSE value END FROM latest_metrics",
        children,
    )
    return run_id, [
        (run, params.get(run, {}), _floats(metrics.get(run, {})), tags.get(run, {})) for run in runs
    ]


def _parent_id(db: sqlite3.Connection, experiment_id: int, run_id: str | None) -> str | None:
    """The latest parent run, or the one parent whose id starts with `run_id` (as
    run_lookup.resolve_run finds it); None when there is not exactly one, for MLflow to word."""
    if run_id is None:
        found = db.execute(_LATEST_PARENT, (experiment_id, TAG_KIND, KIND_PARENT)).fetchone()
        return found[0] if found else None
    folded = normalised(run_id)
    if folded is None:
        return None
    found = db.execute(_PARENT_PREFIX, (experiment_id, TAG_KIND, KIND_PARENT, f"{folded}%"))
    ids = [row[0] for row in found.fetchall()]
    return ids[0] if len(ids) == 1 else None


def _experiment_id(db: sqlite3.Connection, name: str) -> int | None:
    """The experiment's id when exactly one has this name in MLflow's default workspace."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(experiments)")}
    query = "SELECT experiment_id FROM experiments WHERE name = ?"
    if "workspace" in columns:
        query += " AND workspace = 'default'"
    found = db.execute(query, (name,)).fetchall()
    return found[0][0] if len(found) == 1 else None


def _by_run(db: sqlite3.Connection, select: str, children: tuple) -> dict[str, dict]:
    """{run id: {key: value}} of the parent's variant runs, in one query."""
    found: dict[str, dict] = {}
    for run, key, value in db.execute(f"{select} WHERE run_uuid IN ({_CHILDREN})", children):
        found.setdefault(run, {})[key] = value
    return found


def _floats(metrics: dict) -> dict[str, float]:
    """MLflow stores a NaN as is_nan (the value NULL above), and gives it back as NaN."""
    return {key: math.nan if value is None else float(value) for key, value in metrics.items()}


def read_calls_tables(tracking_uri: str, run_ids: list[str]) -> dict[str, Any] | None:
    """Each variant run's calls.json as stored (None: a run killed before it was written), read
    from a local artifact folder without MLflow; None when any run keeps its artifacts
    elsewhere (a server, an object store)."""
    path = _database_file(tracking_uri)
    if path is None or not run_ids:
        return None
    marks = ",".join("?" * len(run_ids))
    try:
        with closing(sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)) as db:
            found = dict(
                db.execute(
                    f"SELECT run_uuid, artifact_uri FROM runs WHERE run_uuid IN ({marks})", run_ids
                )
            )
    except sqlite3.Error:
        return None
    tables = {}
    for run_id in run_ids:
        folder = _local_folder(found.get(run_id))
        if folder is None:
            return None
        file = folder / CALLS_TABLE
        tables[run_id] = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
    return tables


def _local_folder(artifact_uri: str | None) -> Path | None:
    if not artifact_uri:
        return None
    parsed = urlparse(artifact_uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    return Path(artifact_uri) if parsed.scheme == "" and artifact_uri.startswith("/") else None
