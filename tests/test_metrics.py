"""The metric registry: every metric a run writes is declared once, and everything that shows or
tests a metric reads the declaration (comparison rows, tables, gates, registry, docs)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mlflow import MlflowClient
from typer.testing import CliRunner

from llmflow import metrics
from llmflow.cli import app
from llmflow.registry import gates, versions
from llmflow.rows import ComparisonRow
from llmflow.tracking.read import row_from
from tests.helpers import write_experiment

DOCS_METRICS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
# ComparisonRow fields that describe the variant rather than measure it
DESCRIPTIVE = {
    "model",
    "provider",
    "temperature",
    "task_type",
    "cost_kind",
    "run_id",
    "variant_id",
    "skipped",
    "swept",
    "scores",
}


def test_every_metric_a_run_writes_is_declared(tmp_path: Path, tracking_uri: str, fake_ollama):
    model = {
        "provider": "ollama",
        "model": "llama3.1",
        "base_url": fake_ollama.url,
        "cost_per_hour_usd": 1.0,
    }
    scorers = [{"type": "not-empty"}, {"type": "rouge-l", "threshold": 0.5}]
    prompts = [{"id": "a", "user": "hello", "expected": "Echo: hello"}]
    path = write_experiment(tmp_path, [model], prompts=prompts, warmup=1, scorers=scorers)
    result = CliRunner().invoke(app, ["run", str(path), "--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output

    client = MlflowClient(tracking_uri)
    (child,) = client.search_runs(
        [client.get_experiment_by_name("provider-comparison").experiment_id],
        filter_string="tags.`llmflow.kind` = 'variant'",
    )
    written = set(child.data.metrics)
    assert {"latency_p50_s", "estimated_cost_usd", "pass_rate", "n_warmup"} <= written
    assert {key for key in written if metrics.get(key) is None} == set()


def test_comparison_rows_carry_only_declared_metrics():
    measured = {f.name for f in dataclasses.fields(ComparisonRow)} - DESCRIPTIVE
    assert {name for name in measured if name not in metrics.BY_KEY} == set()


def test_a_row_reads_each_metric_by_its_declaration():
    row = row_from("r", {}, {"n_calls": 3.0, "total_tokens": 12.0, "latency_s": 0.5}, {})
    assert row.n_calls == 3 and isinstance(row.n_calls, int)
    assert row.total_tokens == 12 and isinstance(row.total_tokens, int)
    assert row.n_errors == 0  # a count of nothing
    assert row.input_tokens is None and row.estimated_cost_usd is None  # unknown, never 0


def test_gates_and_registry_use_the_gateable_metrics():
    assert gates.METRICS == versions.RECORDED_METRICS == metrics.gateable()
    assert "pass_rate" in gates.METRICS and "latency_p99_s" not in gates.METRICS


def test_direction_comes_from_the_declaration():
    assert metrics.higher_is_better("pass_rate") and metrics.higher_is_better("score.rouge-l")
    assert metrics.higher_is_better("output_tokens_per_s")
    assert not metrics.higher_is_better("latency_p95_s")
    assert not metrics.higher_is_better("no_such_metric")


def test_formats_say_unknown_never_zero():
    assert metrics.BY_KEY["total_tokens"].format(None) == "-"
    assert metrics.BY_KEY["total_tokens"].format(12345.0) == "12,345"
    assert metrics.BY_KEY["n_calls"].format(1000.0) == "1000"
    assert metrics.BY_KEY["latency_s"].format(0.12345) == "0.123"
    assert metrics.BY_KEY["pass_rate"].format(0.5) == "50.0%"
    assert metrics.BY_KEY["estimated_cost_usd"].format(0.0012) == "$0.0012"


def test_the_docs_table_is_generated_from_the_registry():
    text = DOCS_METRICS.read_text()
    start = text.index("<!-- generated: metrics-table -->\n")
    end = text.index("<!-- end generated: metrics-table -->")
    table = text[start:end].split("\n", 1)[1].strip("\n") + "\n"
    assert table == metrics.markdown_table(), "run: python -m llmflow.docs_gen"
