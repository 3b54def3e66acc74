"""The one reader of runs: a row's cost kind as the run says it (llmflow.cost_kind), read from
the cost_model param for runs written before that tag; calls.json in one shape."""

from llmflow.tracking.read import CallsTable, row_from
from llmflow.tracking.schema import TAG_COST_KIND

COST = {"n_calls": 2.0, "estimated_cost_usd": 0.5}


def test_the_cost_kind_is_the_runs_own_tag():
    params = {"cost_model": "config: $1/Mtok in, $2/Mtok out"}
    assert row_from("r", params, COST, {TAG_COST_KIND: "local"}).cost_kind == "local"
    assert row_from("r", params, COST, {TAG_COST_KIND: "priced"}).cost_kind == "priced"


def test_a_run_written_before_the_tag_reads_the_cost_model_param():
    local = {"cost_model": "local: $0.5/hour of wall time"}
    assert row_from("r", local, COST, {}).cost_kind == "local"
    assert row_from("r", {"cost_model": "genai-prices"}, COST, {}).cost_kind == "priced"


def test_without_a_cost_the_kind_is_unpriced_whatever_the_tag_says():
    assert row_from("r", {}, {"n_calls": 2.0}, {TAG_COST_KIND: "priced"}).cost_kind == "unpriced"


def test_a_calls_table_reads_the_same_from_its_stored_form_and_from_its_columns():
    stored = {"columns": ["case", "latency_s"], "data": [["a", 0.1], ["b", None]]}
    table = CallsTable.of(stored)
    assert table.rows() == [{"case": "a", "latency_s": 0.1}, {"case": "b", "latency_s": None}]
    assert CallsTable.of_columns(table.as_columns()) == table
    assert CallsTable.of(None) is None
