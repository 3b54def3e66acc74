"""The calls a run sent the worker, kept on disk until its finish, not in memory.

A CallRecord held in a list costs about 1.3 KB; the worker keeps every call of a run for the
finish (metrics, calls.json, responses.md, the report), so a 100,000-call run grew it by some
130 MB, a 1,000,000-call one by over a gigabyte. Here each call is one JSON line (record_lines.py,
the journal's format) in an anonymous temporary file per variant: unlinked from the start, so a
worker killed with its parent leaves nothing behind. The finish reads one variant at a time.
"""

from __future__ import annotations

import json
import os
import tempfile
from array import array
from collections.abc import Iterator
from typing import IO

from ..record_lines import record_from_dict, record_to_dict
from ..types import CallRecord

_CHUNK = 1 << 20


class RecordSpill:
    """The run's calls, by variant id, one JSON line each in a file of that variant's."""

    def __init__(self) -> None:
        self._files: dict[str, IO[bytes]] = {}
        self._counts: dict[str, int] = {}

    def add(self, record: CallRecord) -> None:
        file = self._files.get(record.variant_id)
        if file is None:
            # kept open until close(): the variant's calls go on arriving
            file = tempfile.TemporaryFile(prefix="llmflow-calls-")  # noqa: SIM115
            self._files[record.variant_id] = file
        line = json.dumps(record_to_dict(record), ensure_ascii=False, separators=(",", ":"))
        file.write(line.encode("utf-8") + b"\n")
        self._counts[record.variant_id] = self._counts.get(record.variant_id, 0) + 1

    def count(self, variant_id: str) -> int:
        return self._counts.get(variant_id, 0)

    def variant_ids(self) -> list[str]:
        return list(self._files)

    def iter(self, variant_id: str) -> Iterator[CallRecord]:
        """The variant's calls in the order they came, read back one at a time."""
        file = self._files.get(variant_id)
        if file is None:
            return
        file.flush()
        for line in _lines(file):
            yield record_from_dict(json.loads(line))

    def ordered(self, variant_id: str) -> OrderedCalls:
        """The variant's calls by (case_id, repeat), read back from disk each time they are
        iterated: what the finish writes (calls.json, responses.md) is in that order."""
        file = self._files.get(variant_id)
        if file is None:
            return OrderedCalls(None, [])
        file.flush()
        keys = []
        offset = 0
        for line in _lines(file):
            data = json.loads(line)
            keys.append((data["case_id"], data["repeat"], offset, len(line)))
            offset += len(line) + 1
        keys.sort(key=lambda k: (k[0], k[1]))
        return OrderedCalls(file, [(k[2], k[3]) for k in keys])

    def records(self, variant_id: str) -> list[CallRecord]:
        """The variant's calls, all at once (for the finish, one variant at a time)."""
        return list(self.iter(variant_id))

    def by_variant(self) -> dict[str, list[CallRecord]]:
        return {variant_id: self.records(variant_id) for variant_id in self._files}

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files, self._counts = {}, {}


class OrderedCalls:
    """A variant's calls in a set order, each read from its place in the file when iterated:
    as many passes as a caller wants, never all the records at once."""

    def __init__(self, file: IO[bytes] | None, places: list[tuple[int, int]]) -> None:
        self._file = file
        self._offsets = array("q", (offset for offset, _ in places))
        self._lengths = array("q", (length for _, length in places))

    def __len__(self) -> int:
        return len(self._offsets)

    def __iter__(self) -> Iterator[CallRecord]:
        if self._file is None:
            return
        descriptor = self._file.fileno()
        for offset, length in zip(self._offsets, self._lengths, strict=True):
            yield record_from_dict(json.loads(os.pread(descriptor, length, offset)))


def _lines(file: IO[bytes]) -> Iterator[bytes]:
    """The file's lines, read at offsets, never moving its position: appends go on at its end."""
    offset, rest = 0, b""
    while chunk := os.pread(file.fileno(), _CHUNK, offset):
        offset += len(chunk)
        *lines, rest = (rest + chunk).split(b"\n")
        yield from lines
