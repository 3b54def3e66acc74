"""A new sqlite store starts as a copy of an empty, fully migrated one.

Creating an MLflow sqlite store runs its ~100 schema migrations: 1.4 s of CPU here with MLflow
already imported, more on a cold start. The first store a machine creates (per MLflow version)
pays that once and is kept, empty, in llmflow's cache directory; every later new store is a
file copy. The copy is the file MLflow itself made, with one fix: the Default experiment's
artifact location, which MLflow makes absolute from the working directory at creation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .mlflow_compat import relocate_default_experiment
from .uri import SQLITE_PREFIX, sqlite_file


def prepare_new_sqlite_store(tracking_uri: str, cache_dir: Path) -> bool:
    """Copy the template into place when tracking_uri names a sqlite file that does not exist
    yet. Returns whether it did; any other URI, or an existing file, is left to MLflow."""
    target = sqlite_file(tracking_uri)
    if target is None or target.exists() or not target.parent.is_dir():
        return False
    template = _template(cache_dir)
    shutil.copyfile(template, target)
    relocate_default_experiment(target)
    return True


def _template(cache_dir: Path) -> Path:
    import mlflow
    from mlflow import MlflowClient

    template = cache_dir / f"mlflow-{mlflow.__version__}-empty.db"
    if not template.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        building = template.with_name(f"{template.name}.{os.getpid()}.tmp")
        MlflowClient(f"{SQLITE_PREFIX}{building}").search_experiments(max_results=1)  # migrates
        os.replace(building, template)  # atomic: a concurrent builder never sees half a file
    return template
