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
from dataclasses import asdict
from pathlib import Path

from .plan import Call
from .types import Completion, Usage

_SCHEMA = "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


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
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def get(self, call: Call) -> Completion | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value FROM responses WHERE key = ?", (cache_key(call),)
            ).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        return Completion(
            text=data["text"],
            usage=Usage(**data["usage"]),
            finish_reason=data["finish_reason"],
            model_version=data["model_version"],
        )

    def put(self, call: Call, completion: Completion) -> None:
        value = json.dumps(asdict(completion))
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)",
                (cache_key(call), value),
            )

    def close(self) -> None:
        self._db.close()
