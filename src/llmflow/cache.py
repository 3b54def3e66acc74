"""Response cache (sqlite): never pay twice for the same call.

Key: provider, model, base_url, every generation setting sent, the messages and the repeat
index (so repeats stay independent samples, and rerunning an experiment replays them). Only
successful answers are stored. Cached calls are marked and never enter latency statistics.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from .errors import ConfigError
from .plan import Call
from .record_lines import completion_from_dict, completion_to_dict
from .types import Completion

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class NotACache(sqlite3.DatabaseError):
    """A sqlite database with tables of its own and none of ours (mlflow.db, say)."""


def _check_is_cache(db: sqlite3.Connection) -> None:
    # adding our table to someone else's database would quietly change a file not ours
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and "responses" not in tables:
        raise NotACache(", ".join(sorted(tables)))


def cache_key(call: Call) -> str:
    variant = call.variant
    identity = {
        "provider": variant.provider,
        "model": variant.model,
        "base_url": variant.entry.base_url,
        "prompt_template": variant.entry.prompt_template,
        "settings": variant.settings.sent(),
        "messages": [[m.role, m.content] for m in call.case.messages],
        "repeat": call.repeat,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path) -> None:
        """Prefer `ResponseCache.open`, which turns a bad file into one line."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            _check_is_cache(self._db)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error:
            self._db.close()
            raise
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path) -> ResponseCache:
        """Open (or create) the cache at `path`. Raises ConfigError naming the file when it
        cannot be one, so the orchestrator can check it before any MLflow run exists."""
        try:
            return cls(path)
        except NotACache:
            raise ConfigError(
                f"cache: {path} is a sqlite database of something else, not a response cache: "
                "give the cache its own file"
            ) from None
        except sqlite3.DatabaseError as e:
            raise ConfigError(f"cache: {path} is not a sqlite database ({e})") from None
        except OSError as e:
            raise ConfigError(f"cache: cannot create {path}: {e.strerror or e}") from None

    def get(self, call: Call) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM responses WHERE key = ?", (cache_key(call),)
            ).fetchone()
        if row is None:
            return None
        return completion_from_dict(json.loads(row[0]))

    def put(self, call: Call, completion: Completion) -> None:
        value = json.dumps(completion_to_dict(completion))
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)",
                (cache_key(call), value),
            )

    def close(self) -> None:
        self._db.close()
