"""A rich progress bar on stderr, fed by the experiment's RunHooks."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..run_types import RunHooks, Skipped
from ..types import CallRecord


class ProgressHooks(RunHooks):
    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]calls"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[errors]} errors"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = None
        self._console = console

    def __enter__(self) -> ProgressHooks:
        return self

    def __exit__(self, *exc) -> None:
        if self._task is not None:
            self._progress.stop()

    def started(self, total_calls: int) -> None:
        # the bar starts with the calls: started before, an empty bar would leave a blank line
        # above an error in the experiment file
        self._progress.start()
        self._task = self._progress.add_task("calls", total=total_calls, errors=0)

    def call_finished(self, record: CallRecord) -> None:
        if self._task is None:
            return
        task = self._progress.tasks[self._task]
        errors = task.fields["errors"] + (0 if record.ok else 1)
        self._progress.update(self._task, advance=1, errors=errors)

    def batch_progress(self, line: str) -> None:
        """A batch job's state, when it changes (llmflow.batch)."""
        self._progress.console.print(f"[cyan]batch[/] {escape(line)}")

    def variant_skipped(self, skipped: Skipped) -> None:
        what = escape(f"{skipped.variant.id}: {skipped.reason}")
        self._progress.console.print(f"[yellow]skipped[/] {what}")
