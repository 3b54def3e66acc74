"""Training files of `provider: sklearn` (task classify): rows with `user` (the text) and
`expected` (its label), read and checked like a prompts file."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..user_files import clip, read_text
from .labels import canonical
from .prompts_file import parse_rows


@dataclass(frozen=True)
class TrainingSet:
    texts: tuple[str, ...]
    labels: tuple[str, ...]


def load_training(path: Path, shown: str, labels: Sequence[str] | None, field: str) -> TrainingSet:
    """Rows with `user` (the text) and `expected` (its label), from .csv/.jsonl/.yaml."""
    try:
        text = read_text(path, shown)
    except OSError as e:
        raise ConfigError(f"{field}: cannot read {clip(shown)}: {e.strerror or e}") from e
    rows = parse_rows(text, path.suffix.lower(), clip(shown))
    if not isinstance(rows, list) or not rows:
        raise ConfigError(f"{field}: {clip(shown)} has no rows: the model needs training data")
    texts, found = [], []
    for index, row in enumerate(rows):
        where = f"{clip(shown)}: [{index}]"
        if not isinstance(row, dict) or not str(row.get("user") or "").strip():
            raise ConfigError(f"{where}.user: is required (the text to classify)")
        label = row.get("expected")
        found.append(canonical(label, labels, f"{where}.expected") if labels else str(label))
        texts.append(str(row["user"]))
    if len(set(found)) < 2:
        raise ConfigError(f"{field}: {clip(shown)} must hold at least two different labels")
    return TrainingSet(tuple(texts), tuple(found))
