"""Reading a run's stored files back. A file the run does not have is found by listing its
folder first, so that every other failure (the store unreachable, a refused request) reaches
the caller instead of passing for a missing file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def has_artifact(client: Any, run_id: str, path: str) -> bool:
    folder = path.rpartition("/")[0] or None
    return any(f.path == path for f in client.list_artifacts(run_id, folder))


def read_text(client: Any, run_id: str, path: str, dst: str | None = None) -> str | None:
    """The run's file at `path`; None when the run has none (a run killed before its tables
    were written, a run of another task)."""
    if not has_artifact(client, run_id, path):
        return None
    return Path(client.download_artifacts(run_id, path, dst)).read_text(encoding="utf-8")


def read_json(client: Any, run_id: str, path: str) -> Any | None:
    text = read_text(client, run_id, path)
    return None if text is None else json.loads(text)
