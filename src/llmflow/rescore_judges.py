"""`llmflow score`'s judges: what they answered before, the calls made now, and one scorer of a
run at a time.

What they answered before (judge_journal.py): the judge lines of the run's journal and of the
ledgers of earlier `llmflow score`s, each read from the run (journal/) and from this directory
(.llmflow/journals), whichever holds them: a run whose traces are gone is scored again without
asking a judge anything it answered. Each call made now is appended to this directory's ledger
as it ends (a kill loses no paid verdict), and the ledger is stored in the run when the
scoring ends, however it ends.

One `llmflow score` of a run at a time: a second one is refused in one line. The lock is a
file in llmflow's cache directory, held with flock: the kernel takes it atomically and releases
it when its holder dies, even by kill -9, so it never goes stale. An MLflow tag cannot do this:
MLflow has no compare-and-set, so two scorers that read an absent tag at once would both take
it. The lock serialises the scorers of one machine (every working directory); two machines
scoring one run on a shared server are not serialised.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import LlmflowError
from .journal import journal_path
from .judge_journal import (
    JudgeEntry,
    Ledger,
    entries_in,
    ledger_path,
    merged,
    paid_usd,
    read_entries,
)

try:
    import fcntl
except ImportError:  # Windows has no flock: scorers there are not serialised
    fcntl = None  # type: ignore[assignment]

STORED_FOLDER = "journal"  # where the run's journal, and the ledgers, are stored in the parent


class ScoreLedger:
    """The judge calls known for a run, and the ledger of those made now."""

    def __init__(self, client: Any, parent_id: str, journal_dir: Path | None) -> None:
        self._client, self._parent_id = client, parent_id
        journal = journal_path(parent_id, journal_dir)
        self.path = ledger_path(journal)
        self._stored_ledger = self._stored(self.path.name)
        self.from_run = merged(self._stored(journal.name), read_entries(journal))
        self.entries = merged(self.from_run, self._stored_ledger, read_entries(self.path))
        self.made: list[JudgeEntry] = []
        self._ledger: Ledger | None = None

    def append(self, entry: JudgeEntry) -> None:
        """A judge call just made: in the ledger file first, then known."""
        if self._ledger is None:
            self._ledger = Ledger(self.path)
        self._ledger.append(entry)
        self.made.append(entry)
        self.entries.append(entry)

    def cost_usd(self, variant_id: str, before: float | None) -> float | None:
        """judge_cost_usd of a variant: every judge call ever made for it; for a run made
        before judge calls were journaled, `before` (its recorded cost) plus those made now."""
        if any(e.variant_id == variant_id for e in self.from_run):
            return paid_usd(self.entries, variant_id)
        now = paid_usd(self.made, variant_id)
        return None if now is None else (before or 0.0) + now

    def store(self) -> None:
        """The ledgers' lines (stored and local) into the run, when a call was made."""
        if self._ledger is not None:
            self._ledger.close()
        if not self.made:
            return
        lines = merged(self._stored_ledger, read_entries(self.path), self.made)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / self.path.name
            path.write_text("".join(e.to_json() + "\n" for e in lines), encoding="utf-8")
            self._client.log_artifact(self._parent_id, str(path), STORED_FOLDER)

    def _stored(self, name: str) -> list[JudgeEntry]:
        from .tracking.artifacts import read_text

        text = read_text(self._client, self._parent_id, f"{STORED_FOLDER}/{name}")
        return list(entries_in(text.split("\n"))) if text else []


@contextlib.contextmanager
def scoring_lock(tracking_uri: str, parent_id: str) -> Iterator[None]:
    """Held while a run is scored; LlmflowError at once when another scorer holds it."""
    from .config.environment import resolve_cache_dir

    # by the run id alone (a UUID): one store's URI is written in several ways (a trailing
    # slash, credentials), and each way must find the same lock
    digest = hashlib.sha256(parent_id.encode()).hexdigest()[:32]
    path = resolve_cache_dir() / "locks" / f"score-{digest}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LlmflowError(
                    f"run {parent_id} is being scored by another `llmflow score`: "
                    "run this again once it has ended"
                ) from None
        yield
