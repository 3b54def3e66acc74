"""What every `llmflow` command shares: consoles, common options, error rendering."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
import typer.core


class LazyConsole:
    """A rich Console made on first use, so that parsing and `--help` never import rich."""

    def __init__(self, **options) -> None:
        self._options = options
        self._console = None

    @property
    def console(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str):
        return getattr(self.console, name)


class _LeanOption(typer.core.TyperOption):
    """An option left unset stays None without typer 0.2x building its pydantic TypeAdapter
    first (importing pydantic, ~0.15 s)."""

    def process_value(self, ctx, value):
        if value is None and not self.required and self.callback is None:
            return None
        return super().process_value(ctx, value)


class LeanGroup(typer.core.TyperGroup):
    """A command group that parses its own options without importing pydantic: its `--help`
    flag, when not given, is False rather than None, and its unset options stay None (typer
    0.2x sends both through a pydantic TypeAdapter). `llmflow models history --help` parses
    the `models` group's options before it reaches `history`.

    Typer takes a group's class (`cls=`) but not its options' class: the group re-classes the
    options it was just given, its own objects, never typer's classes or anything global."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is typer.core.TyperOption:
                param.__class__ = _LeanOption

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            option.default = False
        return option


class Format(str, Enum):
    table = "table"
    md = "md"
    csv = "csv"
    json = "json"


out = LazyConsole()
err = LazyConsole(stderr=True, soft_wrap=True, highlight=False)

TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here.",
        show_default=False,
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")]
ReportDir = Annotated[
    Path | None,
    typer.Option(
        "--out",
        show_default=False,
        help="Also write the report (md, html, csv, json, PNGs) into this directory.",
    ),
]
ExperimentName = Annotated[
    str, typer.Option("--experiment", "-e", help="MLflow experiment name.", show_default=False)
]
ParentRun = Annotated[
    str | None,
    typer.Option(
        "--run",
        help="Parent run id, or a unique prefix of it (the table's title shows 8 characters). "
        "Default: the latest llmflow run.",
        show_default=False,
    ),
]


def open_store(tracking_uri: str | None):
    """The RunStore for --tracking-uri (or its defaults), which must exist: every command but
    `llmflow run` reads runs already made. Imports MLflow only now."""
    from ..tracking.runs import open_store as open_checked
    from ..tracking.uri import resolve_tracking_uri

    return open_checked(resolve_tracking_uri(tracking_uri), create=False)


class errors:
    """Turn any error into one red line and an exit code: 2 for bad input, 130 for an
    interruption, 1 otherwise. `--debug` lets the traceback through instead.

    An error that names a parent run (the runs were created, then ended) is followed by the
    command that continues it, when `resume_command` (with a `{run_id}` field) says how.
    """

    def __init__(self, debug: bool, resume_command: str | None = None) -> None:
        self.debug = debug
        self.resume_command = resume_command

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, tb) -> bool:
        if error is None or self.debug or isinstance(error, (typer.Exit, SystemExit)):
            return False
        if isinstance(error, KeyboardInterrupt):
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130)
        if not isinstance(error, Exception):
            return False
        report_error(error)
        run_id = getattr(error, "parent_run_id", None)
        if run_id and self.resume_command is not None:
            err.print(f"continue it: {self.resume_command.format(run_id=run_id)}")
        raise typer.Exit(exit_code_of(error))


def report_error(error: BaseException) -> None:
    """One line: llmflow's own message, else what failed and where the traceback is."""
    from rich.markup import escape

    from ..errors import LlmflowError
    from ..redact import one_line, redact_text

    if isinstance(error, LlmflowError):
        message = str(error)
    else:
        message = f"unexpected {one_line(error)} (--debug shows the traceback)"
    err.print(f"[red]error:[/] {escape(redact_text(message))}", highlight=False, soft_wrap=True)


def exit_code_of(error: BaseException) -> int:
    from ..errors import ConfigError, Interrupted

    if isinstance(error, Interrupted):
        return 130
    return 2 if isinstance(error, ConfigError) else 1


def judge_notes(failures: list[str], unjudged: int = 0) -> list[str]:
    """One line for judge calls that failed (their checks count as scorer errors, failed),
    one for answers never judged (left out of the pass rate)."""
    notes = []
    if failures:
        notes.append(
            f"[red]{len(failures)} judge verdict(s) failed[/] ({plain(failures[0])}): counted "
            "as failed checks; `llmflow score` asks the judge again"
        )
    if unjudged:
        notes.append(
            f"[red]{unjudged} answer(s) were not judged[/]: left out of the pass rate; "
            "--resume judges them"
        )
    return notes


def plain(text: str) -> str:
    """Text from data (variant ids like `m[temperature=0.2]`, messages): shown as written, never
    read as rich markup, and without credentials."""
    from rich.markup import escape

    from ..redact import redact_text

    return escape(redact_text(text))
