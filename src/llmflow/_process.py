"""Every process-wide setting and trick of llmflow's, in one place, applied only in the two
processes llmflow owns: the `llmflow` command (cli.commands.main calls prepare_cli_process) and
the MLflow worker (its main calls prepare_worker_process). A program of the user's that calls
`run_experiment` (a notebook) gets a library: importing llmflow sets no environment variable,
hides no module and leaves the garbage collector alone (tests/test_process.py).

The tricks save time and memory; `LLMFLOW_LEAN=0` turns them all off, to tell whether one of
them is behind a problem:

- optional libraries hidden from the imports that would load them for nothing: aiohttp from the
  openai SDK (12 MB, for an aiohttp client llmflow does not use), pyarrow and scipy from MLflow
  in the worker (43 MB: the worker's peak over a 1,000-call run is 80 MB less). Each library
  catches the ImportError and lives without the feature (the openai SDK's aiohttp client; an
  MLflow input example as a sparse matrix), for the life of the process: hence only here;
- no cyclic garbage collection while MLflow, its store and the providers' SDKs are imported
  (`gc_paused`: they allocate millions of objects that live as long as the process; the
  collector walks that growing heap again and again, 6.06 s of CPU against 4.85 s without);
- the heap frozen before the command exits (`freeze_heap_before_exit`): the interpreter's last
  collection would walk every object MLflow, SQLAlchemy and matplotlib made, seconds of CPU for
  memory the process is about to give back.

The MLflow settings below stay on with `LLMFLOW_LEAN=0`: they are what the command prints and
waits for, not its speed. Each is a default: a value the user set wins.
"""

from __future__ import annotations

import gc
import importlib
import importlib.abc
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import FrameType, ModuleType
from typing import NoReturn

LEAN_ENV = "LLMFLOW_LEAN"

MLFLOW_SETTINGS = {
    # llmflow prices calls itself (genai-prices); MLflow's remote model catalog would be fetched
    # on the first traced call with a provider set and takes seconds to time out offline
    "MLFLOW_MODEL_CATALOG_URI": "",
    # against a tracking server MLflow prints "View run ... at: <tracking URI>" to stdout as each
    # run ends: it mixes into the comparison table and shows a URI's password
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # MLflow's INFO lines (database migrations, queue flushes) and its download progress bars are
    # noise to a command's user
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}

SERVER_WAIT_ENV = "LLMFLOW_SERVER_WAIT_S"  # overrides _SERVER_AWAY_S (tests set it short)
_SERVER_AWAY_S = 120.0
MLFLOW_RETRY_SETTINGS = ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR")

_owned = False  # this process is llmflow's own: the command or the worker


class LeanImportFailed(ImportError):
    """A library needed, at its import, one of the libraries hidden from it. Nothing is imported
    again in this process (a library holding global state, such as protobuf descriptors, cannot
    be loaded twice): the worker starts afresh without the tricks (restart_without_tricks)."""


def tricks_on() -> bool:
    return _owned and os.environ.get(LEAN_ENV, "1") != "0"


def prepare_cli_process() -> None:
    """The `llmflow` command's start: MLflow's settings, and aiohttp hidden from the openai SDK
    (on whichever thread imports it: only the SDK's own imports are refused)."""
    global _owned
    _owned = True
    _set_defaults(MLFLOW_SETTINGS)
    if tricks_on() and not any(isinstance(f, _HiddenFrom) for f in sys.meta_path):
        sys.meta_path.insert(0, _HiddenFrom(("aiohttp",), importers=("openai",)))


def prepare_worker_process() -> None:
    """The worker's start, before it imports MLflow: MLflow's settings, its HTTP retries
    (worker_retry_settings) and the hidden imports of `import_lean`."""
    global _owned
    _owned = True
    _set_defaults({**MLFLOW_SETTINGS, **worker_retry_settings(os.environ)})


def adopt_environment(environ: Mapping[str, str]) -> None:
    """The worker takes its parent's environment for a run (credentials, MLflow's settings, which
    may have changed since it started), with the worker's settings where the parent has none."""
    os.environ.clear()
    os.environ.update(environ)
    _set_defaults({**MLFLOW_SETTINGS, **worker_retry_settings(environ)})


def worker_retry_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """MLflow retries a refused request for about 2 minutes by itself: in the worker a trace's
    request gives up within seconds, and the worker waits for the server on its own clock
    (server_wait_s)."""
    retries = "2" if server_wait_s(environ) >= 10 else "0"
    return dict(zip(MLFLOW_RETRY_SETTINGS, (retries, "1"), strict=True))


def server_wait_s(environ: Mapping[str, str] = os.environ) -> float:
    """How long a run waits for a tracking server that stopped answering (LLMFLOW_SERVER_WAIT_S,
    default 2 minutes) before it stops sending calls."""
    value = environ.get(SERVER_WAIT_ENV, "")
    try:
        return max(0.0, float(value)) if value else _SERVER_AWAY_S
    except ValueError:
        return _SERVER_AWAY_S


def _set_defaults(settings: Mapping[str, str]) -> None:
    for name, value in settings.items():
        os.environ.setdefault(name, value)


def import_lean(module: str, unused: Iterable[str]) -> ModuleType:
    """`import module`, in the worker with the top-level packages `unused` hidden while it runs.
    Only where no other thread imports meanwhile (the worker's start). Raises LeanImportFailed
    when the library needed one of them."""
    if not tricks_on():
        return importlib.import_module(module)
    hiding = _HiddenFrom(tuple(unused))
    sys.meta_path.insert(0, hiding)
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if not hiding.refused:
            raise
        raise LeanImportFailed(f"{module} needs {', '.join(hiding.refused)}") from e
    finally:
        sys.meta_path.remove(hiding)


def restart_without_tricks() -> NoReturn:
    """Replace this worker by a fresh one with LLMFLOW_LEAN=0: the same process id and pipes,
    nothing imported twice."""
    os.environ[LEAN_ENV] = "0"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])  # noqa: S606 - this very command


class _HiddenFrom(importlib.abc.MetaPathFinder):
    """The top-level packages `hidden` reported not installed, to every import or, with
    `importers`, to the imports made by those packages' modules. Caches nothing: once the finder
    is gone (or for another importer), the package imports as usual."""

    def __init__(self, hidden: tuple[str, ...], importers: tuple[str, ...] = ()) -> None:
        self.hidden = hidden
        self.importers = importers
        self.refused: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,  # noqa: ARG002 - the finder protocol
        target: ModuleType | None = None,  # noqa: ARG002
    ) -> ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top not in self.hidden or (self.importers and _importer() not in self.importers):
            return None
        self.refused.append(fullname)
        raise ModuleNotFoundError(
            f"No module named {fullname!r} (hidden by llmflow; {LEAN_ENV}=0 imports it)",
            name=fullname,
        )


def _importer() -> str:
    """The top-level package whose module runs the import being looked up."""
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if not name.startswith(("importlib", "_frozen_importlib")):
            return name.partition(".")[0]
        frame = frame.f_back
    return ""


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic collection within, in a process of llmflow's own; the collector is left as it
    was found after."""
    enabled = gc.isenabled()
    if tricks_on():
        gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def freeze_heap_before_exit() -> None:
    if tricks_on():
        gc.freeze()
