"""A variant run's calls as a table (calls.json, written with mlflow.log_table's layout) and as
readable markdown (responses.md); the table's `prompt` column and the messages it came from."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ..types import CallRecord, Completion, Cost, GenerationSettings, Message, Timing, Usage

CALL_COLUMNS = (
    "case",
    "repeat",
    "prompt",
    "response",
    "error",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "latency_s",
    "ttft_s",
    "cost_usd",
    "cost_kind",
    "cached",
    "attempts",
)


def calls_table(records: Iterable[CallRecord]) -> dict[str, list[Any]]:
    """One row per call, as columns for mlflow.log_table: CALL_COLUMNS, in that order."""
    columns: dict[str, list[Any]] = {name: [] for name in CALL_COLUMNS}
    for r in records:
        usage = r.usage
        row = {
            "case": r.case_id,
            "repeat": r.repeat,
            "prompt": prompt_text(r.messages),
            "response": r.completion.text if r.completion else None,
            "error": f"{r.error_type}: {r.error_message}" if r.error_type else None,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "latency_s": r.timing.latency_s if r.timing else None,
            "ttft_s": r.timing.ttft_s if r.timing else None,
            "cost_usd": r.cost.usd if r.cost else None,
            "cost_kind": r.cost.kind if r.cost else None,
            "cached": r.cached,
            "attempts": r.attempts,
        }
        for name, value in row.items():
            columns[name].append(value)
    return columns


def responses_lines(records: Iterable[CallRecord]) -> Iterator[str]:
    """responses.md's lines (joined by a newline), made one call at a time."""
    for r in records:
        yield f"## {r.case_id} (repeat {r.repeat})\n"
        for message in r.messages:
            yield f"**{message.role}:** {message.content}\n"
        if r.completion:
            yield f"**assistant:** {r.completion.text}\n"
        else:
            yield f"**error:** {r.error_type}: {r.error_message}\n"


def prompt_text(messages: Sequence[Message]) -> str:
    """The calls table's `prompt`: every message as "[role] content", a blank line apart."""
    return "\n\n".join(f"[{m.role}] {m.content}" for m in messages)


_ROLE = re.compile(r"(?:^|\n\n)\[(system|user|assistant)\] ")


def prompt_messages(text: str, known: Sequence[Message] | None = None) -> tuple[Message, ...]:
    """The messages a calls table's `prompt` was made from: `known` (the plan's for its case)
    when they give that very text, else read back from it (a message that itself holds a blank
    line and "[user] " would be split there)."""
    if known is not None and prompt_text(known) == text:
        return tuple(known)
    found = list(_ROLE.finditer(text))
    if not found or found[0].start() != 0:
        return (Message("user", text),)
    ends = [m.start() for m in found[1:]] + [len(text)]
    return tuple(
        Message(m.group(1), text[m.end() : end]) for m, end in zip(found, ends, strict=True)
    )


def records_from_rows(
    variant_id: str,
    rows: Sequence[dict[str, Any]],
    asked: dict[str, tuple[Message, ...]] | None = None,
) -> list[CallRecord]:
    """The calls back from calls_table's rows, as far as the table keeps them: the messages
    asked (the `asked` ones of the case when they give the stored prompt, so that a judge is
    asked what the run asked it), the answer or the error, token counts, latency and time to
    the first token, cost, attempts and the cache flag. The table keeps no settings, no
    finish reason and no clock: those are defaults here."""
    asked = asked or {}
    return [_record_from_row(variant_id, row, asked.get(row["case"])) for row in rows]


def _record_from_row(
    variant_id: str, row: dict[str, Any], asked: tuple[Message, ...] | None
) -> CallRecord:
    error, latency = row["error"], row["latency_s"]
    error_type, _, message = (error or "").partition(": ")
    usage = Usage(row.get("input_tokens"), row.get("output_tokens"))
    return CallRecord(
        variant_id=variant_id,
        case_id=row["case"],
        repeat=int(row["repeat"]),
        messages=prompt_messages(row["prompt"] or "", asked),
        settings=GenerationSettings(),
        completion=None if error else Completion(row["response"] or "", usage),
        timing=Timing(latency, row.get("ttft_s"), 0, 0) if latency is not None else None,
        cost=Cost(row["cost_kind"] or "unpriced", row["cost_usd"]),
        error_type=error_type or None,
        error_message=message or None,
        attempts=int(row.get("attempts") or 1),
        cached=bool(row["cached"]),
    )
