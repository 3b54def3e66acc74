"""Prompts from a file (.jsonl, .csv, .yaml): rows with id, user and an optional system."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .config import PromptCase, describe_validation_error
from .errors import ConfigError


def load_prompts_file(path: Path, shown_as: str | None = None) -> tuple[PromptCase, ...]:
    """Prompts from .jsonl, .csv or .yaml/.yml, each row with id, user and optional system."""
    shown = shown_as or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"prompts: cannot read {shown}: {e.strerror or e}") from e
    rows = _parse_rows(text, path.suffix.lower(), shown)
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{shown}: must hold a non-empty list of prompts")
    cases = []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            row = {k: v for k, v in row.items() if v not in (None, "")}
        try:
            cases.append(PromptCase.model_validate(row))
        except ValidationError as e:
            raise ConfigError(
                f"{shown}: [{index}]{describe_validation_error(e, leading_dot=True)}"
            ) from e
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ConfigError(f"{shown}: duplicate prompt id {duplicates[0]!r}")
    return tuple(cases)


def _parse_rows(text: str, suffix: str, shown: str) -> Any:
    try:
        if suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if suffix == ".csv":
            return list(csv.DictReader(text.splitlines()))
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise ConfigError(f"{shown}: not valid {suffix[1:]}: {e}") from e
    raise ConfigError(f"prompts: {shown}: use a .jsonl, .csv or .yaml file")
