"""Importing a library without the optional ones it would load and llmflow never uses there.

MLflow and the openai SDK each import, at their own import, libraries that they catch the
ImportError of and only need for features llmflow does not call: pyarrow and scipy in MLflow
(56 MB of the trace writer's RSS), aiohttp in the openai SDK (12 MB, for an aiohttp client).
Hidden while the library is imported, they stay unloaded; they are visible again afterwards,
for whatever does need them (scikit-learn needs scipy; the Gemini SDK, aiohttp). A library that
turns out to need one at import is imported again with nothing hidden.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from types import ModuleType


def import_without(module: str, unused: Iterable[str]) -> ModuleType:
    """`import module`, with the top-level packages `unused` hidden while it runs."""
    hidden = [name for name in unused if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment] - the import system's "not installed"
    try:
        return importlib.import_module(module)
    except ImportError:
        _show(hidden)
        return importlib.import_module(module)  # what failed left sys.modules: imported anew
    finally:
        _show(hidden)


def _show(hidden: list[str]) -> None:
    for name in hidden:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]
