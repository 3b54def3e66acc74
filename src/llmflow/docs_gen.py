"""The generated parts of docs/: written from the code, so that they cannot drift from it.

`python -m llmflow.docs_gen` rewrites every block between `<!-- generated: NAME -->` and
`<!-- end generated: NAME -->` in the pages below; `--check` only says which are stale (exit 1).
The experiment file's reference is read from the pydantic schema (`llmflow.config`'s public
models, and the models their fields hold), the metrics from `metrics.py`, the providers from
their specs, the module map from each module's docstring. A schema field without a meaning in
`docs_fields.py` is an error naming it: say what a new field does when you add it.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.dataclasses import is_pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from . import docs_fields, metrics
from .config import Experiment
from .providers.spec import provider_specs

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parents[1]
FIX = "python -m llmflow.docs_gen"
_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated: (?P=name) -->)",
    re.DOTALL,
)


def experiment_reference() -> str:
    """A table per model of the experiment file, from `Experiment` down."""
    sections = []
    for model in _models_below(Experiment):
        where = docs_fields.WHERE[model.__name__]
        rows = ["| field | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for name, info in _fields(model).items():
            shown = info.alias or name
            meaning = _meaning(model.__name__, shown)
            rows.append(
                f"| `{shown}` | {_type_text(info.annotation)} | {_default_text(info)} "
                f"| {_allowed_text(info)} | {meaning} |"
            )
        sections.append(f"### {where}\n\n" + "\n".join(rows) + "\n")
    return "\n".join(sections)


def _models_below(root: type[BaseModel]) -> list[type]:
    """The models and pydantic dataclasses (PromptCase) that `root`'s fields hold, itself first."""
    found: list[type] = []

    def visit(model: type) -> None:
        if model in found:
            return
        found.append(model)
        for info in _fields(model).values():
            for inner in _inner_types(info.annotation):
                if isinstance(inner, type) and (
                    issubclass(inner, BaseModel) or is_pydantic_dataclass(inner)
                ):
                    visit(inner)

    visit(root)
    return found


def _fields(model: type) -> dict[str, FieldInfo]:
    fields = model.model_fields if issubclass(model, BaseModel) else model.__pydantic_fields__
    return dict(fields)


def _inner_types(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in typing.get_args(annotation):
        yield from _inner_types(arg)


def _meaning(model: str, field: str) -> str:
    try:
        return docs_fields.MEANINGS[model][field]
    except KeyError:
        raise SystemExit(
            f"{model}.{field} has no meaning in src/llmflow/docs_fields.py: add one, then run {FIX}"
        ) from None


def _type_text(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_text(args[0])
    if origin in (typing.Union, types.UnionType):
        shown = [_type_text(a) for a in args if a is not type(None)]
        return " or ".join(shown) + (" or null" if type(None) in args else "")
    if origin in (list, tuple):  # a tuple[X, ...] is a list in the file
        return f"list of {_type_text(args[0])}"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or is_pydantic_dataclass(annotation)
    ):
        heading = docs_fields.WHERE[annotation.__name__]
        return f"[{heading}](#{heading.lower().replace(' ', '-')})"
    names = {str: "text", int: "integer", float: "number", bool: "true/false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        return f"`{info.default_factory()!r}`".replace("`[]`", "empty")
    if info.default is None or info.default is PydanticUndefined:
        return "-"
    if info.default == ():
        return "empty"
    value = info.default
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def _allowed_text(info: FieldInfo) -> str:
    limits = [_limit_text(item) for item in _constraints(info)]
    return ", ".join(text for text in limits if text)


def _constraints(info: FieldInfo) -> Iterator[Any]:
    yield from info.metadata
    for inner in _inner_types(info.annotation):
        if typing.get_origin(inner) is typing.Annotated:
            yield from typing.get_args(inner)[1:]


def _limit_text(item: Any) -> str:
    func: Callable[..., Any] | None = getattr(item, "func", None)
    if func is not None and func.__closure__:  # the schema's _between / _at_least validators
        bounds = inspect.getclosurevars(func).nonlocals
        if "high" in bounds:
            return f"{_number(bounds['low'])} to {_number(bounds['high'])}"
        if "low" in bounds:
            return f">= {_number(bounds['low'])}"
    for attr, text in (("ge", ">= {}"), ("le", "<= {}"), ("min_length", "at least {} long")):
        if getattr(item, attr, None) is not None:
            return text.format(_number(getattr(item, attr)))
    if getattr(item, "max_length", None) is not None:
        return f"at most {_number(item.max_length)} long"
    if getattr(item, "pattern", None):
        return f"`{item.pattern}`"
    return ""


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def metrics_table() -> str:
    return metrics.markdown_table()


def providers_table() -> str:
    rows = [
        "| provider | key from | base URL | extra | default model | priced |",
        "|---|---|---|---|---|---|",
    ]
    for spec in provider_specs():
        keys = " or ".join(f"`{k}`" for k in spec.key_env) or "none"
        if spec.self_hosted_key:
            keys += " (none for a self-hosted `base_url`)"
        url = "in-process" if not spec.remote else _url_text(spec)
        extra = f'`pip install -e ".[{spec.extra}]"`' if spec.extra else "(always installed)"
        model = f"`{spec.default_model}`" if spec.default_model else "required"
        priced = (
            "per hour of wall time (`cost_per_hour_usd`)"
            if spec.local_compute
            else f"genai-prices (`{spec.price_id}`)"
        )
        rows.append(f"| `{spec.name}` | {keys} | {url} | {extra} | {model} | {priced} |")
    return "\n".join(rows) + "\n"


def _url_text(spec: Any) -> str:
    parts = []
    if spec.base_url_env:
        parts.append(f"`${spec.base_url_env}`")
    if spec.default_base_url:
        parts.append(f"`{spec.default_base_url}`")
    if not spec.default_base_url:
        parts.append("the vendor's API")
    return ", else ".join(parts)


def module_map() -> str:
    """Each module of src/llmflow with the first sentence of its docstring."""
    rows = ["| module | what it owns |", "|---|---|"]
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if "__pycache__" in relative:
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        first = " ".join(doc.strip().split("\n\n")[0].split())
        rows.append(f"| `{relative}` | {first.replace('|', '&#124;') or '-'} |")
    return "\n".join(rows) + "\n"


GENERATORS: dict[str, Callable[[], str]] = {
    "experiment-reference": experiment_reference,
    "metrics-table": metrics_table,
    "providers-table": providers_table,
    "module-map": module_map,
}
PAGES = ("docs/experiment-file.md", "docs/metrics.md", "docs/architecture.md")


def regenerate(text: str) -> str:
    """The page with every generated block written anew."""

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in GENERATORS:
            raise SystemExit(f"unknown generated block {name!r}: one of {', '.join(GENERATORS)}")
        return f"{match[1]}\n{GENERATORS[name]()}\n{match[4]}"

    return _BLOCK.sub(fill, text)


def stale_pages(root: Path = REPO) -> list[str]:
    return [
        page
        for page in PAGES
        if regenerate(text := (root / page).read_text(encoding="utf-8")) != text
    ]


def main(argv: list[str]) -> int:
    """Run from the repository's root (a checkout's own pages, whichever llmflow is installed)."""
    root = Path.cwd() if (Path.cwd() / PAGES[0]).is_file() else REPO
    if argv[:1] == ["--check"]:
        stale = stale_pages(root)
        for page in stale:
            print(f"{page}: generated blocks are stale; run {FIX}")
        return 1 if stale else 0
    for page in PAGES:
        path = root / page
        text = path.read_text(encoding="utf-8")
        if (new := regenerate(text)) != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
