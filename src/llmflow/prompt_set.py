"""The prompt set as a run stores it: one row per prompt as read (itself a valid prompts file),
and its digest, written a prompt at a time. The run's worker logs the file: the prompts never
cross the pipe, which for 100,000 of them cost the worker its largest allocation of the run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import PromptCase

DIGEST_CHARS = 16  # of the prompt set's sha256: MLflow keeps digests of up to 36
FILE_NAME = "prompts.jsonl"


@dataclass(frozen=True)
class PromptSetFile:
    path: Path
    digest: str
    rows: int


def write_prompt_set(prompts: Iterable[PromptCase], folder: Path) -> PromptSetFile:
    """`folder`/prompts.jsonl, with the set's digest and size."""
    digest = _Digest()
    path = folder / FILE_NAME
    with path.open("w", encoding="utf-8") as out:
        for prompt in prompts:
            row = prompt.row()
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            digest.add(row)
    return PromptSetFile(path, digest.hexdigest(), digest.rows)


class _Digest:
    """sha256 of json.dumps([row, ...], sort_keys=True) (the rows without their metadata), fed
    a row at a time: the digests of runs stored before it was streamed stay the same."""

    def __init__(self) -> None:
        self._sha, self.rows = hashlib.sha256(b"["), 0

    def add(self, row: dict[str, Any]) -> None:
        # the metadata a dataset carries is no part of what its calls and checks read
        without = {k: v for k, v in row.items() if k != "metadata"}
        basis = json.dumps(without, ensure_ascii=False, sort_keys=True)
        self._sha.update((", " if self.rows else "").encode() + basis.encode())
        self.rows += 1

    def hexdigest(self) -> str:
        sha = self._sha.copy()
        sha.update(b"]")
        return sha.hexdigest()[:DIGEST_CHARS]
