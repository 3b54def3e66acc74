"""A table on a terminal of any width. rich fits a table that is too wide by cutting every cell
to an ellipsis, which leaves nothing readable of the comparison's thirteen columns on an
80-column terminal. So the table is shown the first of four ways that fits: side by side; turned
on its side (a column per row, a line per field), which suits a comparison of a few variants;
its essential columns side by side, their cells wrapped at spaces, saying which columns it left
out; or a block of `field  value` lines per row."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table


def fit_table(
    console: Console,
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    caption: str = "",
    left: Collection[str] = (),
    label_columns: int = 1,
    essential: Collection[str] = (),
    whole: str = "",
) -> RenderableType:
    """The table of `rows` under `header` as it fits `console`'s width. `left`: the columns
    whose text is aligned left (numbers are aligned right); `label_columns`: how many leading
    cells name a row when it is turned or shown as a block; `essential`: the columns a narrow
    terminal still shows side by side; `whole`: where to see the others (an option)."""
    from rich.console import Group
    from rich.text import Text

    wide = _side_by_side(title, header, rows, caption, left)
    if _fits(console, wide):
        return wide
    labels = [" ".join(row[:label_columns]) for row in rows]
    fields = list(zip(header[label_columns:], *(row[label_columns:] for row in rows), strict=True))
    turned = _turned(title, " ".join(header[:label_columns]), labels, fields, caption)
    if _fits(console, turned):
        return turned
    if essential:
        keep = [i for i, name in enumerate(header) if name in essential]
        left_out = ", ".join(name for name in header if name not in essential)
        note = f"Left out at this width: {left_out}" + (f" ({whole})" if whole else "")
        narrow = _side_by_side(
            title,
            [header[i] for i in keep],
            [[row[i] for i in keep] for row in rows],
            "\n".join(line for line in (caption, note) if line),
            left,
        )
        if _fits(console, narrow, wrapped=True):
            return narrow
    blocks: list[RenderableType] = [Text(title, style="bold")]
    for i, label in enumerate(labels):
        blocks += [Text(""), Text(label, style="bold"), _block([(f[0], f[i + 1]) for f in fields])]
    if caption:
        blocks += [Text(""), Text(caption, style="bold yellow")]
    return Group(*blocks)


def _fits(console: Console, table: Table, wrapped: bool = False) -> bool:
    """Whether the table fits the width: as it is, or with its cells wrapped at spaces (rich
    caps a measure at the width it is given, hence the larger one)."""
    unbounded = console.options.update_width(1_000_000)
    measured = console.measure(table, options=unbounded)
    return (measured.minimum if wrapped else measured.maximum) <= console.width


def _table(title: str, caption: str) -> Table:
    from rich.table import Table
    from rich.text import Text

    # Text, not str: rich would read a sweep's variant id, m[temperature=0.2], as markup
    return Table(
        title=Text(title),
        caption=Text(caption) if caption else None,
        caption_style="bold yellow",
        caption_justify="left",
    )


def _side_by_side(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    caption: str,
    left: Collection[str],
) -> Table:
    from rich.text import Text

    table = _table(title, caption)
    for i, name in enumerate(header):
        # a column without a space to wrap at keeps its width: rich would narrow it, and cut
        words_only = not any(" " in row[i] for row in rows)
        justify = "left" if name in left else "right"
        table.add_column(Text(name), justify=justify, no_wrap=words_only)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table


def _turned(
    title: str,
    corner: str,
    labels: list[str],
    fields: list[tuple[str, ...]],
    caption: str,
) -> Table:
    from rich.text import Text

    table = _table(title, caption)
    table.add_column(Text(corner), justify="left")
    for label in labels:
        table.add_column(Text(label), justify="right")
    for field in fields:
        table.add_row(*(Text(cell) for cell in field))
    return table


def _block(pairs: list[tuple[str, str]]) -> Table:
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim", overflow="fold")  # narrower still: folded, never cut
    grid.add_column(overflow="fold")
    for name, value in pairs:
        grid.add_row(Text(name), Text(value))
    return grid


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The table for a pipe, a file or a CI log: every column, no line wrapped at any width."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
