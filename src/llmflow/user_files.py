"""Reading what users write: UTF-8 text (a BOM is fine), YAML whose aliases cannot explode, and
values echoed back in error messages short and without credentials."""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .redact import redact_text

_BOM = b"\xef\xbb\xbf"


def read_text(path: Path, shown: str) -> str:
    """A UTF-8 file's text, without the byte order mark Excel and Notepad write.

    Raises OSError when it cannot be read, ConfigError naming `shown` when it is not UTF-8.
    """
    data = path.read_bytes()
    start = len(_BOM) if data.startswith(_BOM) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        at = start + e.start
        raise ConfigError(
            f"{shown}: not UTF-8 text (byte 0x{data[at]:02x} at position {at}): save it as UTF-8"
        ) from None


# what aliases may add to a document: anchors for shared settings stay usable, while a 1 KB
# "billion laughs" file cannot grow into a billion values for pydantic or an error message
MAX_ALIAS_EXPANSION = 100_000


# libyaml's parser when PyYAML was built with it (the wheels are): 7x faster on a file of
# 1,000 prompts; the same safe constructor and resolver either way
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _BoundedLoader(_SafeLoader):
    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            _check_expansion(node)
        return node


def _check_expansion(root: yaml.Node) -> None:
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, active: frozenset[int]) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise yaml.constructor.ConstructorError(
                None, None, "an alias refers to a value that contains it", node.start_mark
            )
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        inner = active | {key}
        sizes[key] = 1 + sum(size(child, inner) for child in children)
        return sizes[key]

    if size(root, frozenset()) - len(sizes) > MAX_ALIAS_EXPANSION:
        raise yaml.constructor.ConstructorError(
            None,
            None,
            f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} values: write them out",
            root.start_mark,
        )


def load_yaml(text: str, shown: str) -> Any:
    """YAML (safe, with bounded alias expansion); ConfigError naming `shown` and the line."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or "not valid YAML"
        raise ConfigError(f"{shown}: {where}{clip(problem)}") from e
    except RecursionError:
        raise ConfigError(f"{shown}: nested too deeply") from None


_ECHO = reprlib.Repr()
_ECHO.maxstring = _ECHO.maxother = 60
_ECHO.maxlevel, _ECHO.maxlist, _ECHO.maxdict = 2, 4, 4


def shorten(value: Any, limit: int = 80) -> str:
    """A value as an error message may echo it: repr'd, cut to `limit` characters, without
    credentials. reprlib stops at a few levels, so a huge structure is never walked."""
    return clip(redact_text(_ECHO.repr(value)), limit)


def clip(text: str, limit: int = 200) -> str:
    """`text`, cut to `limit` characters (with "...") if longer."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
