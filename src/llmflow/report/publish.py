"""The report of a run being finished, rendered from what its runs hold (ReportData), into the
folder the parent run's artifacts take and into --out."""

from __future__ import annotations

from pathlib import Path

from ..redact import one_line
from .data import ReportData

REPORT_FAILED = "could not write the report"  # how a run's problems say it has no report


def preload() -> None:
    """Import matplotlib now (about a second), while the process waits for something else. A
    failure waits too: render_report says it, once the calls are safe."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
    except Exception:  # noqa: BLE001 - see above
        return


def render_report(data: ReportData, into: Path, out_dir: Path | None = None) -> str | None:
    """Write the report into `into`, and into out_dir when given. Returns why it could not, in
    one line; never raises: the calls are already safe."""
    from .render import write_report

    try:
        write_report(data, into)
        if out_dir is not None:
            write_report(data, out_dir)
    except Exception as e:  # noqa: BLE001 - a report that fails must not fail the run
        return f"{REPORT_FAILED}: {one_line(e)}"
    return None


def headline_of(data: ReportData) -> list[str]:
    """The report's first findings, for the end of the run; none rather than a failed run."""
    from .render import headline

    try:
        return headline(data)
    except Exception:  # noqa: BLE001 - the report itself was written; the run is safe
        return []
