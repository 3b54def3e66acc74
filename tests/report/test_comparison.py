"""The comparison's formats: unknown token sums are never 0, empty answers are never silent."""

import csv
import io
import json

from rich.console import Console

from llmflow.cli.reading import comparison_table
from llmflow.report import to_csv, to_json, to_markdown
from llmflow.tracking.read import row_from
from llmflow.types import Usage
from tests.report.builders import NO_USAGE, report_data, variant

TOKEN_FIELDS = ("total_tokens", "input_tokens", "output_tokens")


def no_usage_comparison():
    """llama.cpp sent no usage for 2 of 3 calls; the fake openai counted all of its calls."""
    return report_data(
        variant("llama", [0.1, 0.2, 0.3], usages=[NO_USAGE, NO_USAGE]),
        variant("openai", [0.1, 0.2], usages=[Usage(19, 25), Usage(19, 25)]),
    ).comparison


def rich_text(comparison) -> str:
    console = Console(width=220, record=True, color_system=None)
    console.print(comparison_table(console, comparison))
    return console.export_text()


def cells_of(text: str, model: str) -> list[str]:
    """The cells of the row whose first cell is `model`, in a rich or a markdown table."""
    rows = [[c.strip() for c in line.replace("│", "|").split("|")] for line in text.splitlines()]
    return next(cells for cells in rows if len(cells) > 2 and cells[1] == model)


def test_row_keeps_unknown_token_sums_unknown():
    metrics = {"n_calls": 3.0, "n_errors": 0.0, "n_usage_missing": 2.0, "n_empty": 1.0}
    row = row_from("r1", {"model": "m", "variant_id": "m"}, metrics, {})
    assert (row.total_tokens, row.input_tokens, row.output_tokens) == (None, None, None)
    assert (row.n_usage_missing, row.n_empty) == (2, 1)


def test_unknown_tokens_are_a_dash_in_the_table_and_markdown_never_0():
    comparison = no_usage_comparison()
    for text in (rich_text(comparison), to_markdown(comparison)):
        assert cells_of(text, "llama")[5] == "-"  # Total tokens
        assert cells_of(text, "openai")[5] == "88"
        assert "tokens not reported by the server for 2 of 3 calls of llama" in text


def test_unknown_tokens_are_null_in_json_and_empty_in_csv():
    comparison = no_usage_comparison()
    rows = {r["variant_id"]: r for r in json.loads(to_json(comparison))}
    assert [rows["llama"][k] for k in TOKEN_FIELDS] == [None, None, None]
    assert rows["llama"]["n_usage_missing"] == 2 and rows["openai"]["n_usage_missing"] == 0
    assert [rows["openai"][k] for k in TOKEN_FIELDS] == [88, 38, 50]
    # an empty cell is CSV's unknown (pandas reads NaN); "-" would make the column text
    cells = {r["variant_id"]: r for r in csv.DictReader(io.StringIO(to_csv(comparison)))}
    assert [cells["llama"][k] for k in TOKEN_FIELDS] == ["", "", ""]
    assert cells["llama"]["n_usage_missing"] == "2"
    assert [cells["openai"][k] for k in TOKEN_FIELDS] == ["88", "38", "50"]


def test_empty_answers_are_a_warning_under_the_table():
    comparison = report_data(
        variant("gemma-3-270m (0.7)", [0.1, 0.2, 0.3, 0.4], texts=["", "  \n", "Hi.", ""]),
        variant("openai", [0.1, 0.2]),
    ).comparison
    expected = "3 of 4 answers of gemma-3-270m (0.7) were empty"
    markdown = to_markdown(comparison)
    assert f"- **Warning**: {expected}" in markdown
    assert f"Warning: {expected}" in rich_text(comparison)
    assert "openai were empty" not in markdown
    rows = {r["variant_id"]: r for r in json.loads(to_json(comparison))}
    assert (rows["gemma-3-270m (0.7)"]["n_empty"], rows["openai"]["n_empty"]) == (3, 0)


def test_no_warning_when_every_answer_is_there_and_counted():
    comparison = report_data(variant("openai", [0.1, 0.2])).comparison
    assert "Warning" not in to_markdown(comparison) and "Warning" not in rich_text(comparison)


def test_sweep_variant_ids_are_not_read_as_rich_markup():
    comparison = report_data(
        variant("m[temperature=0.2]", [0.1], model="m", swept={"temperature": 0.2})
    ).comparison
    assert "m[temperature=0.2]" in rich_text(comparison)


def test_csv_dict_cells_are_json():
    swept = variant("m[temperature=0.2]", [0.1, 0.2], swept={"temperature": 0.2})
    cells = next(csv.DictReader(io.StringIO(to_csv(report_data(swept).comparison))))
    assert json.loads(cells["swept"]) == {"temperature": 0.2}
    assert cells["scores"] == ""  # None: unknown stays an empty cell
