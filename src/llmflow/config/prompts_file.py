"""Prompts from a file (.jsonl, .csv, .yaml): rows with id, user, optional system, expected
and assert (in a csv, a JSON list)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError
from ..user_files import clip, load_yaml, read_text, shorten
from .schema import PromptCase, known_fields
from .validation_errors import describe_validation_error


def load_prompts_file(
    path: Path, shown_as: str | None = None, field: str = "prompts"
) -> tuple[PromptCase, ...]:
    """Prompts from .jsonl, .csv or .yaml/.yml, each row with id, user and optional system.
    `field`: where the file is named (`experiment.yaml: prompts`), for a file not read."""
    shown = clip(shown_as or str(path))
    try:
        text = read_text(path, shown)
    except OSError as e:
        # a relative path is read from the experiment file's folder, not the working directory;
        # a name too long to show whole is not shown twice
        named, resolved = shown_as or str(path), str(path.absolute())
        where = clip(named, 120)
        if where == named and resolved != named:
            where = f"{named} ({clip(resolved, 120)})"
        raise ConfigError(f"{field}: cannot read {where}: {e.strerror or e}") from e
    suffix = path.suffix.lower()
    # a .jsonl file is validated a line at a time: its rows as dicts, all at once, would cost
    # more than the prompts they make (100,000 rows: 40 MB)
    rows = _jsonl_rows(text, shown) if suffix == ".jsonl" else parse_rows(text, suffix, shown)
    if not isinstance(rows, Iterator | list):
        raise ConfigError(f"{shown}: must hold a non-empty list of prompts")
    cases = [_case(row, index, shown) for index, row in enumerate(rows)]
    if not cases:
        raise ConfigError(f"{shown}: must hold a non-empty list of prompts")
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise ConfigError(f"{shown}: duplicate prompt id {shorten(case.id)}")
        seen.add(case.id)
    return tuple(cases)


def _case(row: Any, index: int, shown: str) -> PromptCase:
    if isinstance(row, dict):
        row = {k: v for k, v in row.items() if v not in (None, "")}
        row = _checks_cell(row, shown, index)
    try:
        return PromptCase.of(row)
    except ValidationError as e:
        problem = describe_validation_error(e, leading_dot=True, known_fields=known_fields)
        raise ConfigError(f"{shown}: [{index}]{problem}") from e


def _checks_cell(row: dict[str, Any], shown: str, index: int) -> dict[str, Any]:
    """A csv cell can only hold text: its `assert` is a JSON list of checks."""
    cell = row.get("assert")
    if not isinstance(cell, str):
        return row
    try:
        return {**row, "assert": json.loads(cell)}
    except json.JSONDecodeError as e:
        raise ConfigError(f"{shown}: [{index}].assert: not a JSON list of checks: {e.msg}") from e


def parse_rows(text: str, suffix: str, shown: str) -> Any:
    """The rows of a .jsonl, .csv or .yaml file, as read (not validated)."""
    if suffix == ".jsonl":
        return list(_jsonl_rows(text, shown))
    if suffix == ".csv":
        # newline="": a quoted field keeps its line breaks, which csv itself handles
        try:
            return list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error as e:
            raise ConfigError(f"{shown}: not valid csv: {e}") from e
    if suffix in (".yaml", ".yml"):
        return load_yaml(text, shown)
    raise ConfigError(f"prompts: {shown}: use a .jsonl, .csv or .yaml file")


def _jsonl_rows(text: str, shown: str) -> Iterator[Any]:
    # '\n' only: str.splitlines also splits at U+2028, U+2029 and U+0085, which JSON strings
    # may hold unescaped
    start, number = 0, 0
    while start <= len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        line, number, start = text[start:end], number + 1, end + 1
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{shown}: line {number}: not valid JSON: {e.msg}") from e
