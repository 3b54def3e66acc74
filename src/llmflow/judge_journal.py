"""The judges' ledger: every judge call made, journaled like a model call, so that no judge is
paid twice for the same answer, rubric and judge.

A judge call is a line {"type": "judge", ...} of the run's journal (`llmflow run` and
`--resume`), or of the ledger `llmflow score` keeps beside it (and stores in the run). It names
the graded call (variant, case, repeat), the check, and `key`: a hash of what the judge was
asked (its model entry, the rubric, the question, the reference and the answer), never of the
prompt's random boundary. A call whose judge answered is reused wherever the key comes back;
its verdict is read again from the stored answer with the check's current threshold. A call
that failed (429, unreachable, refused by the budget) was not answered, and is asked again.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .record_lines import journal_lines, record_from_dict, record_to_dict
from .redact import redact_url
from .types import CallRecord, Message

if TYPE_CHECKING:
    from .scoring.specs import ScorerSpec

JUDGE_LINE = "judge"
LEDGER_SUFFIX = ".judges.jsonl"  # `llmflow score`'s ledger, beside the run's journal


@dataclass(frozen=True)
class JudgeEntry:
    """One judge call: the call it graded, the check, what was asked (`key`) and the judge's
    call record (its answer, tokens and cost)."""

    variant_id: str
    case_id: str
    repeat: int
    scorer: str
    key: str
    record: CallRecord
    id: str = field(default_factory=lambda: uuid.uuid4().hex)  # the same line read twice

    @property
    def answered(self) -> bool:
        return self.record.ok and self.record.completion is not None

    @property
    def graded(self) -> tuple[str, str, int, str]:
        """What reuses it: the graded call and what its judge was asked."""
        return self.variant_id, self.case_id, self.repeat, self.key

    def to_json(self) -> str:
        data = {
            "type": JUDGE_LINE,
            "id": self.id,
            "variant_id": self.variant_id,
            "case_id": self.case_id,
            "repeat": self.repeat,
            "scorer": self.scorer,
            "key": self.key,
            "record": record_to_dict(self.record),
        }
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JudgeEntry:
        return cls(
            variant_id=data["variant_id"],
            case_id=data["case_id"],
            repeat=int(data["repeat"]),
            scorer=data["scorer"],
            key=data["key"],
            record=record_from_dict(data["record"]),
            id=data["id"],
        )


_ANSWER_SHAPING = {
    "provider",
    "model",
    "base_url",
    "temperature",
    "max_tokens",
    "top_p",
    "seed",
    "stop",
    "prompt_template",
    "n_ctx",
}


def question_key(
    spec: ScorerSpec, messages: tuple[Message, ...], reference: str | None, answer: str
) -> str:
    """The hash of what a judge is asked: the settings of its model entry that shape its
    answer, the rubric, the question (the last user message), the reference and the answer.
    How it is reached (timeout, retries, key variable, credentials in its URL) or priced does
    not change the answer: changing one never pays for the same verdict again."""
    question = next((m.content for m in reversed(messages) if m.role == "user"), "")
    judge = spec.judge_entry()
    shaping = judge.model_dump(mode="json", include=_ANSWER_SHAPING)
    if shaping.get("base_url"):
        shaping["base_url"] = redact_url(shaping["base_url"])
    entry = json.dumps(shaping, sort_keys=True)
    asked = json.dumps([entry, spec.rubric, question, reference or "", answer])
    return hashlib.sha256(asked.encode()).hexdigest()


def entries_in(lines: Iterable[str]) -> Iterator[JudgeEntry]:
    """The judge lines among a journal's lines; a line cut short by a kill is skipped."""
    for line in lines:
        if '"type": "judge"' not in line:
            continue
        try:
            data = json.loads(line)
            yield JudgeEntry.from_dict(data)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue


def read_entries(path: Path) -> list[JudgeEntry]:
    """The judge calls of a journal or ledger file; none when it does not exist."""
    if not path.is_file():
        return []
    return list(entries_in(journal_lines(path)))


def merged(*sources: Iterable[JudgeEntry]) -> list[JudgeEntry]:
    """Every entry once, though several files hold it."""
    seen: dict[str, JudgeEntry] = {}
    for source in sources:
        for entry in source:
            seen.setdefault(entry.id, entry)
    return list(seen.values())


def answered(entries: Iterable[JudgeEntry]) -> dict[tuple[str, str, int, str], JudgeEntry]:
    """The calls a judge answered, by what they graded and were asked (the first kept)."""
    found: dict[tuple[str, str, int, str], JudgeEntry] = {}
    for entry in entries:
        if entry.answered:
            found.setdefault(entry.graded, entry)
    return found


def paid_usd(entries: Iterable[JudgeEntry], variant_id: str) -> float | None:
    """What judging a variant cost, every call ever made for it summed (resumes and re-scores
    included); None when a call that was answered is unpriced."""
    total = 0.0
    for entry in entries:
        if entry.variant_id != variant_id:
            continue
        usd = entry.record.cost.usd if entry.record.cost else None
        if usd is None:
            if entry.answered and not entry.record.cached:
                return None
            continue  # a failed call cost nothing known
        total += usd
    return total


def ledger_path(journal: Path) -> Path:
    """`llmflow score`'s ledger for the run whose journal is `journal`."""
    return journal.with_name(journal.name.removesuffix(".jsonl") + LEDGER_SUFFIX)


class Ledger:
    """An append-only file of judge lines, each flushed before anything else happens to it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8", newline="\n")

    def append(self, entry: JudgeEntry) -> None:
        self._file.write(entry.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
