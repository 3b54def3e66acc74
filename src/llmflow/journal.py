"""The run journal: every finished call is appended and flushed to a JSONL file before anything
else happens to it, so a crash, Ctrl-C or kill -9 loses no paid result and `--resume` can
continue the same MLflow run with only the calls that never finished.

Line 1 is a header naming the MLflow runs; every other line is one CallRecord, or one judge
call (judge_journal.py), once the calls are in.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .judge_journal import JUDGE_LINE, JudgeEntry, ledger_path, merged, read_entries
from .record_lines import journal_lines, record_from_dict, record_to_dict
from .redact import redact_url
from .run_ids import pick
from .types import CallRecord

JOURNAL_DIR = Path(".llmflow") / "journals"


def journal_path(parent_run_id: str, directory: Path | None = None) -> Path:
    return (directory or JOURNAL_DIR) / f"{parent_run_id}.jsonl"


@dataclass(frozen=True)
class JournalHeader:
    """Line 1 of a journal: the MLflow runs a resumed run continues, and the file it ran.

    `config_path` is the experiment file's resolved path (None in journals written before it
    was recorded); `tracking_uri` is kept redacted, as everything llmflow writes.
    """

    parent_run_id: str
    run_ids: dict[str, str]  # variant id -> child run id
    experiment_id: str
    config_sha256: str
    config_path: str | None = None
    tracking_uri: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "tracking_uri", redact_url(self.tracking_uri))

    def to_json(self) -> str:
        return json.dumps({"type": "header", **asdict(self)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, line: str) -> JournalHeader:
        """Raises ConfigError when the line is not a journal header."""
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or data.pop("type", None) != "header":
            raise ConfigError("not a journal header")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JournalHeader:
        """From the header's keys (others are ignored); ConfigError when one is missing."""
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as e:
            raise ConfigError(f"not a journal header: {e}") from None

    def matches(self, config: Path, config_sha256: str) -> bool:
        """Started from this experiment file (a header with no path: from the same content)."""
        if self.config_path is None:
            return self.config_sha256 == config_sha256
        return Path(self.config_path) == config.resolve()


class Journal:
    def __init__(self, path: Path, header: JournalHeader | Mapping[str, Any] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        new = not path.exists()
        # newline="\n": the reader splits at "\n" only, whatever the platform
        self._file = path.open("a", encoding="utf-8", newline="\n")
        self._lock = threading.Lock()
        if new and header is not None:
            if not isinstance(header, JournalHeader):
                header = JournalHeader.from_dict(header)
            self._write_line(header.to_json())

    def append(self, record: CallRecord) -> None:
        entry = {"type": "call", **record_to_dict(record)}
        self._write_line(json.dumps(entry, ensure_ascii=False))

    def append_judge(self, entry: Any) -> None:
        """A judge call (judge_journal.JudgeEntry), journaled as a model call is."""
        self._write_line(entry.to_json())

    def append_batch(self, entry: Mapping[str, Any]) -> None:
        """A batch job's line (llmflow.batch.ledger): written before its job is waited for."""
        self._write_line(json.dumps(entry, ensure_ascii=False))

    def _write_line(self, line: str) -> None:
        with self._lock:
            self._file.write(line + "\n")
            # flushed to the OS: survives the process being killed (not a power cut, which an
            # fsync per call would cover at a cost of milliseconds each)
            self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_journal(path: Path) -> tuple[JournalHeader | None, list[CallRecord]]:
    """The header (None if missing) and every complete record; a line cut short by a kill is
    ignored."""
    header, records, _ = _read(path)
    return header, records


def _read(path: Path) -> tuple[JournalHeader | None, list[CallRecord], list[Any]]:
    """The header, the model calls and the judge calls (judge_journal.JudgeEntry)."""

    if not path.exists():
        raise ConfigError(f"no journal at {path}: --resume needs the directory the run started in")
    header = None
    records, judges = [], []
    for line in journal_lines(path):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # the last line of a killed process may be partial
        if not isinstance(entry, dict):
            continue
        kind = entry.pop("type", None)
        if kind == "header":
            header = JournalHeader.from_dict(entry)
        elif kind == JUDGE_LINE:
            judges.append(JudgeEntry.from_dict(entry))
        elif isinstance(kind, str) and kind.startswith("batch"):
            continue  # a batch job's line: llmflow.batch.ledger reads them
        else:
            records.append(record_from_dict(entry))
    return header, records, judges


def read_header(path: Path) -> JournalHeader | None:
    """The header alone (the first line), or None when the file has none."""
    try:
        with path.open("rb") as file:
            first = file.readline()
    except OSError:
        return None
    try:
        return JournalHeader.from_json(first.decode("utf-8"))
    except (UnicodeDecodeError, ConfigError):
        return None


@dataclass
class Resumed:
    """What a journal gives `--resume`: the header naming the MLflow runs, and every call."""

    header: JournalHeader
    records: list[CallRecord]
    judges: list[Any] = field(default_factory=list)  # judge_journal.JudgeEntry: paid already


def load_for_resume(
    parent_run_id: str | None, directory: Path | None, config: Path, config_sha256: str
) -> Resumed:
    """The journal of a run (None: the latest one started from this experiment file), refused
    if the experiment file has changed."""
    if parent_run_id is None:
        path = latest_journal(directory, config, config_sha256)
        if path is None:
            raise ConfigError(
                f"--resume: no journal in {directory or JOURNAL_DIR} was started from {config}: "
                "run it from the directory the run started in, or name the run to resume"
            )
    else:
        path = journal_of(parent_run_id, directory)
    header, records, judges = _read(path)
    if header is None:
        raise ConfigError(f"{path}: not a journal (no header line)")
    # what `llmflow score` paid the judges since (a killed run may be scored before it is
    # resumed) is reused too, never paid again
    judges = merged(judges, read_entries(ledger_path(path)))
    if header.config_sha256 != config_sha256:
        raise ConfigError(
            f"{config}: changed since run {header.parent_run_id} started; "
            "--resume needs the same experiment file"
        )
    return Resumed(header, records, judges)


def journal_of(prefix: str, directory: Path | None = None) -> Path:
    """The journal of the run whose id starts with `prefix` (run ids name the journals)."""
    directory = directory or JOURNAL_DIR
    ledgers = ".judges.jsonl"  # `llmflow score`'s judge ledgers (judge_journal.py) lie beside
    ids = [path.stem for path in directory.glob("*.jsonl") if not path.name.endswith(ledgers)]
    return journal_path(pick(prefix, ids, f"the journals in {directory}"), directory)


def latest_journal(
    directory: Path | None = None, config: Path | None = None, config_sha256: str = ""
) -> Path | None:
    """The newest journal; with `config`, the newest one started from that experiment file."""
    journals = sorted((directory or JOURNAL_DIR).glob("*.jsonl"), key=_mtime, reverse=True)
    for path in journals:
        if config is None:
            return path
        header = read_header(path)
        if header is not None and header.matches(config, config_sha256):
            return path
    return None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed since the glob
        return 0.0
