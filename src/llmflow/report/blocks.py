"""The report's building blocks, each rendered to markdown and to HTML here and nowhere else.

A section of the report is a list of blocks (render.py builds them), so a new section is written
once and appears in report.md and report.html alike: the HTML is the markdown rendered by
markdown-it (CommonMark, raw HTML escaped).
"""

from __future__ import annotations

import base64
import functools
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    header: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]
    css_class: str = ""


@dataclass(frozen=True)
class Figures:
    plots: dict[str, Path] = field(default_factory=dict)  # caption -> PNG file


Block = Heading | Paragraph | Table | Bullets | Figures


def to_markdown(blocks: Sequence[Block]) -> str:
    return "\n\n".join(_markdown(b) for b in blocks if not _empty(b)) + "\n"


def to_html(blocks: Sequence[Block], title: str) -> str:
    body = "\n".join(_html(b) for b in blocks if not _empty(b))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1rem; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; }}
th {{ background: #f3f3f3; }} td:first-child, th:first-child {{ text-align: left; }}
code {{ background: #f3f3f3; padding: 0 0.2rem; }} figure {{ margin: 1.5rem 0; }}
img {{ max-width: 100%; border: 1px solid #eee; }} figcaption {{ color: #555; }}
.warnings {{ color: #8a4b00; }}
</style></head><body>
{body}
</body></html>
"""


def _empty(block: Block) -> bool:
    return isinstance(block, Bullets) and not block.items


def _markdown(block: Block) -> str:
    match block:
        case Heading(text, level):
            return f"{'#' * level} {text}"
        case Paragraph(text):
            return text
        case Table(header, rows):
            lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
        case Bullets(items):
            return "\n".join(f"- {item}" for item in items)
        case Figures(plots):
            return "\n".join(f"![{title}]({path.name})" for title, path in plots.items())
    raise TypeError(f"not a report block: {block!r}")


def _html(block: Block) -> str:
    """The block's markdown, rendered by markdown-it (CommonMark and tables); figures are
    embedded, so that report.html is one file."""
    if isinstance(block, Figures):
        return "".join(_figure(title, path) for title, path in block.plots.items())
    md = _markdown_it()
    tokens = md.parse(_markdown(block))
    if isinstance(block, Bullets) and block.css_class:
        tokens[0].attrSet("class", block.css_class)  # the list's opening tag
    return md.renderer.render(tokens, md.options, {})


def _figure(title: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    image = _markdown_it().renderInline(f"![{title}](data:image/png;base64,{data})")
    return f"<figure>{image}<figcaption>{html.escape(title)}</figcaption></figure>"


@functools.cache
def _markdown_it():
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table")
