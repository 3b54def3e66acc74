"""Run ids as people type them: any unique prefix names a run, as git names a commit.

The commands print the first 8 characters of a run id (the table's title); `--run` and RUN_ID
take that back, or any other unique prefix. This module owns what a prefix may be and how a
missing or ambiguous one is worded; tracking/run_lookup.py asks MLflow for the candidates,
tracking/sqlite_read.py asks a sqlite store directly, journal.py the journal files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .errors import LlmflowError

_HEX = re.compile(r"[0-9a-f]+")


def normalised(prefix: str) -> str | None:
    """The prefix as run ids spell it (lower-case hex), or None when no run id starts so: a
    prefix that passes is safe in a SQL LIKE pattern (no %, _ or quote)."""
    folded = prefix.strip().lower()
    return folded if _HEX.fullmatch(folded) else None


def pick(prefix: str, ids: Iterable[str], where: str, noun: str = "run") -> str:
    """The one id among `ids` that starts with `prefix`; else LlmflowError: "no run ... in
    {where}", or "ambiguous (N runs start with ...)"."""
    folded = normalised(prefix)
    found = sorted({i for i in ids if folded and i.startswith(folded)})
    if len(found) == 1:
        return found[0]
    if not found:
        raise LlmflowError(f"no {noun} {prefix!r} in {where}")
    shown = ", ".join(i[: len(folded) + 4] for i in found[:3])
    more = ", ..." if len(found) > 3 else ""
    raise LlmflowError(
        f"{noun} id {prefix!r} is ambiguous ({len(found)} {noun}s start with {folded!r} in "
        f"{where}: {shown}{more}): give more characters"
    )
