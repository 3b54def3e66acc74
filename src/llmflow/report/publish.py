"""The report of a stored run, built from MLflow alone, into its parent run (and a folder)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ..redact import one_line


def publish_report(
    client: Any, experiment: str, parent_run_id: str, out_dir: Path | None = None
) -> str | None:
    """Write the report into the parent run's `report/` artifacts, and into out_dir when given.
    Returns why it could not, in one line; never raises: the calls are already safe."""
    from .data import load_report_data
    from .render import write_report

    try:
        data = load_report_data(client, experiment, parent_run_id)
        with tempfile.TemporaryDirectory() as tmp:
            write_report(data, Path(tmp))
            client.log_artifacts(parent_run_id, tmp, "report")
        if out_dir is not None:
            write_report(data, out_dir)
    except Exception as e:  # noqa: BLE001 - a report that fails must not fail the run
        return f"could not write the report: {one_line(e)}"
    return None
