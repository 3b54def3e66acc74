"""The run journal: every finished call is appended and flushed to a JSONL file before anything
else happens to it, so a crash, Ctrl-C or kill -9 loses no paid result and `--resume` can
continue the same MLflow run with only the calls that never finished.

Line 1 is a header naming the MLflow runs; every other line is one CallRecord.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .types import CallRecord, Completion, Cost, GenerationSettings, Message, Timing, Usage

JOURNAL_DIR = Path(".llmflow") / "journals"


def journal_path(parent_run_id: str, directory: Path | None = None) -> Path:
    return (directory or JOURNAL_DIR) / f"{parent_run_id}.jsonl"


class Journal:
    def __init__(self, path: Path, header: dict[str, Any] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        new = not path.exists()
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        if new and header is not None:
            self._write({"type": "header", **header})

    def append(self, record: CallRecord) -> None:
        self._write({"type": "call", **record_to_dict(record)})

    def _write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(line)
            # flushed to the OS: survives the process being killed (not a power cut, which an
            # fsync per call would cover at a cost of milliseconds each)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_journal(path: Path) -> tuple[dict[str, Any], list[CallRecord]]:
    """The header and every complete record; a line cut short by a kill is ignored."""
    if not path.exists():
        raise ConfigError(f"no journal at {path}: --resume needs the directory the run started in")
    header: dict[str, Any] = {}
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed process may be partial
        if entry.pop("type", None) == "header":
            header = entry
        else:
            records.append(record_from_dict(entry))
    return header, records


@dataclass
class Resumed:
    """What a journal gives `--resume`: the header naming the MLflow runs, and every call."""

    header: dict[str, Any]
    records: list[CallRecord]


def load_for_resume(
    parent_run_id: str | None, directory: Path | None, config: Path, config_sha256: str
) -> Resumed:
    """The journal of a run (None: the latest), refused if the experiment file has changed."""
    if parent_run_id is None:
        path = latest_journal(directory)
        if path is None:
            raise ConfigError("--resume: no journal in .llmflow/journals to resume from")
    else:
        path = journal_path(parent_run_id, directory)
    header, records = read_journal(path)
    if header.get("config_sha256") != config_sha256:
        raise ConfigError(
            f"{config}: changed since run {header.get('parent_run_id')} started; "
            "--resume needs the same experiment file"
        )
    return Resumed(header, records)


def latest_journal(directory: Path | None = None) -> Path | None:
    journals = sorted((directory or JOURNAL_DIR).glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    return journals[-1] if journals else None


def record_to_dict(record: CallRecord) -> dict[str, Any]:
    data = asdict(record)
    data["settings"]["stop"] = list(record.settings.stop)
    return data


def record_from_dict(data: dict[str, Any]) -> CallRecord:
    completion = data["completion"]
    if completion is not None:
        completion = Completion(**{**completion, "usage": Usage(**completion["usage"])})
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
    )
