"""A CallRecord (and a Completion) as a plain dict and back, losslessly: the one place they are
(de)serialised, for the run's journal (journal.py), the judges' ledger (judge_journal.py) and
the response cache (cache.py); and the lines of a journal, read so that no line a kill cut
short, and no call, is lost. (A calls.json row, which keeps less, is tracking/calls_table.py's.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .types import CallRecord, Completion, Cost, GenerationSettings, Message, Timing, Usage


def journal_lines(path: Path) -> Iterator[str]:
    """The JSON lines of a journal, read as bytes and split at b"\n" only: str.splitlines
    would also split at U+2028, U+2029 and U+0085, which json.dumps(ensure_ascii=False) leaves
    in strings, and lose those calls. A line cut mid-character by a kill is dropped."""
    with path.open("rb") as file:
        for raw in file:
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                continue


def record_to_dict(record: CallRecord) -> dict[str, Any]:
    data = asdict(record)
    data["settings"]["stop"] = list(record.settings.stop)
    return data


def completion_to_dict(completion: Completion) -> dict[str, Any]:
    return asdict(completion)


def completion_from_dict(data: dict[str, Any]) -> Completion:
    return Completion(**{**data, "usage": Usage(**data["usage"])})


def record_from_dict(data: dict[str, Any]) -> CallRecord:
    completion = data["completion"]
    if completion is not None:
        completion = completion_from_dict(completion)
    settings = data["settings"]
    return CallRecord(
        variant_id=data["variant_id"],
        case_id=data["case_id"],
        repeat=data["repeat"],
        messages=tuple(Message(**m) for m in data["messages"]),
        settings=GenerationSettings(**{**settings, "stop": tuple(settings["stop"])}),
        completion=completion,
        timing=Timing(**data["timing"]) if data["timing"] else None,
        cost=Cost(**data["cost"]) if data["cost"] else None,
        error_type=data["error_type"],
        error_message=data["error_message"],
        attempts=data["attempts"],
        cached=data["cached"],
        batch_job=data.get("batch_job"),
        batch_wall_s=data.get("batch_wall_s"),
    )
