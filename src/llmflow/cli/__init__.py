"""The `llmflow` command line: `commands` (run, compare, report, score, cache), `batches` (a
run's batch jobs), `registry` (register, promote, models), `common` (options, consoles, the
one-line error handling), `progress` (the progress bar) and `entry` (the console script). The
Typer `app` and `main` load on first use, so that importing this package costs nothing."""

from typing import Any


def __getattr__(name: str) -> Any:
    if name in ("app", "main"):
        from . import commands

        return getattr(commands, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
