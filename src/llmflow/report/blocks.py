"""The report's building blocks, each rendered to markdown and to HTML here and nowhere else.

A section of the report is a list of blocks (render.py builds them), so a new section is written
once and appears in report.md and report.html alike. Text may use the little markdown the
interpretation uses, **bold** and `code`; HTML escapes it first.
"""

from __future__ import annotations

import base64
import html
import re
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
    match block:
        case Heading(text, level):
            return f"<h{level}>{inline_html(text)}</h{level}>"
        case Paragraph(text):
            return f"<p>{inline_html(text)}</p>"
        case Table(header, rows):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in rows
            )
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        case Bullets(items, css_class):
            attribute = f' class="{css_class}"' if css_class else ""
            return (
                f"<ul{attribute}>" + "".join(f"<li>{inline_html(i)}</li>" for i in items) + "</ul>"
            )
        case Figures(plots):
            return "".join(_figure(title, path) for title, path in plots.items())
    raise TypeError(f"not a report block: {block!r}")


def _figure(title: str, path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    caption = html.escape(title)
    return (
        f'<figure><img alt="{caption}" src="data:image/png;base64,{data}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def inline_html(text: str) -> str:
    """The little markdown the report's text uses, **bold** and `code`, as escaped HTML."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
