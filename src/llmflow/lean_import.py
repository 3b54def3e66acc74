"""Importing a library without the optional ones it would load and llmflow never uses, in the
processes llmflow owns.

MLflow and the openai SDK each import, at their own import, libraries whose ImportError they
catch and which they need only for features llmflow does not call: pyarrow and scipy in MLflow
(43 MB at import; the trace writer's peak over a 1,000-call run fell by 80 MB without them),
aiohttp in the openai SDK (12 MB, for its aiohttp client). Hidden while the library is imported,
they stay unloaded. What the library decided then stays decided for the life of the process
(the openai SDK's aiohttp client is unavailable; MLflow cannot take a sparse matrix as an input
example), so this happens only in a process llmflow owns: the `llmflow` command and the trace
writer's child claim theirs; `run_experiment` called from a user's own program leaves their
libraries as they are. A library that turns out to need a hidden one at import is imported again
with nothing hidden.

The hiding holds for the whole process while the import runs: it is done where no other thread
imports anything that needs a hidden library (the writer's MLflow before its threads start, or
beside its pipe reader; the openai SDK on the event loop, beside the thread starting the writer).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType

_claimed = False


def claim_process() -> None:
    """Say that this process is llmflow's own: later imports through import_without may hide."""
    global _claimed
    _claimed = True


def import_without(module: str, unused: Iterable[str]) -> ModuleType:
    """`import module`, with the top-level packages `unused` hidden while it runs when this
    process is llmflow's own."""
    if not _claimed:
        return importlib.import_module(module)
    before = set(sys.modules)
    hidden = [name for name in unused if name not in before]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment] - the import system's "not installed"
    try:
        return importlib.import_module(module)
    except ImportError:
        _forget_partial(module.partition(".")[0], before)
        for name in hidden:
            sys.modules.pop(name, None)
        return importlib.import_module(module)
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


def _forget_partial(package: str, before: set[str]) -> None:
    """After a failed import: forget what it loaded of `package` and of any package whose own
    import failed (its submodules are left behind), so that the retry runs them afresh. The
    other packages it loaded imported whole and stay: some (numpy) cannot be loaded twice."""
    for name in set(sys.modules) - before:
        top = name.partition(".")[0]
        if top == package or top not in sys.modules:
            del sys.modules[name]
