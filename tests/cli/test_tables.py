"""Tables on terminals of any width: every cell in full, never cut to an ellipsis."""

from __future__ import annotations

import pytest
from rich.console import Console

from llmflow.cli.reading import comparison_table
from llmflow.cli.tables import fit_table
from llmflow.types import Usage
from tests.report.builders import report_data, variant

HEADER = ("Name", "Version", "Provider", "Model", "p50 (s)", "Estimated cost")
ROWS = [
    ["llm_gemini_chat", "v3", "gemini", "gemini-2.5-flash", "0.412", "0.000123 USD"],
    ["llm_ollama_chat", "v12", "ollama", "llama3.1:8b-instruct", "1.204", "unpriced"],
]


def shown(width: int, rows=ROWS, **options) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(fit_table(console, "Registered models", HEADER, rows, **options))
    return console.export_text()


def longest_line(text: str) -> int:
    return max(len(line.rstrip()) for line in text.splitlines())


@pytest.mark.parametrize("width", [200, 80, 40])
def test_every_cell_is_shown_whole_within_the_width(width: int):
    text = shown(width, label_columns=2)
    assert "…" not in text
    for row in ROWS:
        for cell in row[2:]:
            assert cell in text
    assert longest_line(text) <= width


def test_narrower_than_a_cell_it_is_folded_never_cut():
    text = shown(16)
    assert "…" not in text and longest_line(text) <= 16
    assert "gemini-2.5-flash" in "".join(text.split())


def layout(text: str) -> str:
    first_row = next(line for line in text.splitlines() if "llm_gemini_chat" in line)
    if "Left out at this width" in text:
        return "essential"
    if "gemini-2.5-flash" in first_row:
        return "side by side"
    return "turned" if "llm_ollama_chat" in first_row else "blocks"


def test_the_layout_is_the_first_that_fits():
    essential = ("Name", "Version", "p50 (s)")
    assert layout(shown(200, essential=essential)) == "side by side"
    assert layout(shown(80, essential=essential)) == "turned"
    many = ROWS * 5
    text = shown(50, many, essential=essential, whole="--json has them all")
    assert layout(text) == "essential"
    assert "…" not in text and longest_line(text) <= 50
    assert "Provider, Model, Estimated cost (--json has them all)" in " ".join(text.split())
    assert layout(shown(50, many)) == "blocks"  # nothing said to be essential
    assert layout(shown(30, many, essential=essential)) == "blocks"  # too narrow even so


def test_a_cell_with_spaces_wraps_in_the_essential_layout_and_the_others_stay_whole():
    rows = [[*row[:2], "staging, production", *row[3:]] for row in ROWS * 5]
    text = shown(44, rows, essential=("Name", "Provider", "Estimated cost"))
    assert layout(text) == "essential" and "…" not in text
    assert "llm_gemini_chat" in text and "0.000123 USD" not in text  # wrapped at its space
    assert "staging," in text and "production" in text


def test_turned_and_block_rows_are_named_by_their_label_columns():
    assert "llm_gemini_chat v3" in shown(80, label_columns=2)
    assert "llm_ollama_chat v12" in shown(30, label_columns=2)
    assert "llm_ollama_chat v12" not in shown(30)  # one label column: the name alone


def test_the_comparison_fits_an_80_column_terminal_with_its_warnings():
    comparison = report_data(
        variant("llama", [0.1, 0.2, 0.3], usages=[Usage(None, None)] * 2),
        variant("gemini-2.5-flash", [0.4, 0.5], usages=[Usage(19, 25), Usage(19, 25)]),
    ).comparison
    console = Console(width=80, record=True, color_system=None)
    console.print(comparison_table(console, comparison))
    text = console.export_text()
    assert "…" not in text and longest_line(text) <= 80
    assert "gemini-2.5-flash" in text and "Estimated cost" in text
    assert "Warning: tokens not reported by the server for 2 of 3 calls of llama" in " ".join(
        text.split()
    )


def test_a_comparison_of_many_variants_keeps_its_essential_columns_on_80():
    comparison = report_data(
        *(variant(f"gemini-2.5-flash-{i}", [0.4, 0.5]) for i in range(8))
    ).comparison
    console = Console(width=80, record=True, color_system=None)
    console.print(comparison_table(console, comparison))
    text = " ".join(console.export_text().split())
    assert "…" not in text and "gemini-2.5-flash-7" in text
    assert "Left out at this width: Provider, Temperature, Latency (s), Total tokens" in text
    assert "(-f md or -f json has them all)" in text
