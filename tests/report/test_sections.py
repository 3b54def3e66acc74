"""The report's sections are written once: report.md and report.html render the same blocks,
and the report built from calls in memory says what the report read back from MLflow says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from llmflow.experiment import RunRequest, run_experiment
from llmflow.report import blocks
from llmflow.report.data import VariantRun, report_data_from_records
from llmflow.report.interpret import interpret
from llmflow.report.render import sections
from llmflow.stored_report import load_report_data
from tests.helpers import write_experiment


def test_each_block_renders_to_markdown_and_html():
    report = [
        blocks.Heading("Title", level=1),
        blocks.Paragraph("run `abc` is **fast**"),
        blocks.Table(["Model", "p50 (s)"], [["a<b", "0.100"]]),
        blocks.Bullets([]),  # an empty list is left out of both
        blocks.Bullets(["one", "two"], css_class="warnings"),
    ]
    assert blocks.to_markdown(report) == (
        "# Title\n\nrun `abc` is **fast**\n\n| Model | p50 (s) |\n|---|---|\n| a<b | 0.100 |"
        "\n\n- one\n- two\n"
    )
    page = blocks.to_html(report, "T").replace("\n", "")  # markdown-it ends each tag's line
    assert (
        "<h1>Title</h1>" in page and "<p>run <code>abc</code> is <strong>fast</strong></p>" in page
    )
    assert (
        "<td>a&lt;b</td>" in page and '<ul class="warnings"><li>one</li><li>two</li></ul>' in page
    )
    assert page.count("<ul") == 1


def test_the_html_is_the_markdown_rendered_by_markdown_it():
    """One renderer: a table cell reads as markdown in report.html as it does in report.md, and
    raw HTML in text (a model's name, an answer quoted) stays text."""
    page = blocks.to_html(
        [blocks.Table(["Model"], [["`gpt` **x**"]]), blocks.Paragraph("<script>x</script>")], "T"
    )
    assert "<td><code>gpt</code> <strong>x</strong></td>" in page
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_the_report_from_memory_matches_the_report_from_mlflow(
    tmp_path: Path, tracking_uri: str, fake_ollama
):
    """The worker keeps a run's calls on disk and the parent keeps none (worker/spill.py): the
    metrics, tables and pairwise verdicts it wrote are those computed from every call at once,
    here the journal's, with repeats, a warmup and failed calls."""
    models = [
        {"provider": "ollama", "model": m, "base_url": fake_ollama.url, "max_retries": 0}
        for m in ("llama3.1", "llama3.2")
    ]
    fake_ollama.inject(*["500"] * 5)  # the two warmups fail, then three measured calls
    path = write_experiment(tmp_path, models, repeats=3, warmup=1, concurrency=1)
    request = RunRequest(path, tracking_uri=tracking_uri, journal_dir=tmp_path / "journals")
    result = run_experiment(request)
    # result.records: read from the journal, as every call was written there
    journaled = [record for records in result.records.values() for record in records]
    assert result.n_failed_calls == 5 and result.n_calls == len(journaled) == 2 * (1 + 2 * 3)
    client = MlflowClient(tracking_uri)
    stored = load_report_data(client, "provider-comparison")

    in_memory = [
        VariantRun(
            run_id=row.run_id,
            params=client.get_run(row.run_id).data.params,
            records=[r for r in journaled if r.variant_id == row.variant_id],
        )
        for row in stored.comparison.rows
    ]
    built = report_data_from_records(
        "provider-comparison", result.parent_run_id, in_memory, stored.tracking_uri
    )
    assert built.comparison.rows == stored.comparison.rows
    assert [sorted(v.latencies) for v in built.variants] == [
        sorted(v.latencies) for v in stored.variants
    ]  # calls.json is in call order, the records in the order they finished

    def rendered(data) -> str:
        findings, next_steps = interpret(data)
        return blocks.to_markdown(sections(data, findings, next_steps, plots={}))

    assert rendered(built) == rendered(stored)
    assert sum(row.n_errors for row in stored.comparison.rows) == 3
    assert built.pairs == stored.pairs
    for row in stored.comparison.rows:  # and as numpy computes them from every call at once
        calls = [r for r in journaled if r.variant_id == row.variant_id and not r.warmup]
        timed = [r.timing.latency_s for r in calls if r.ok and not r.cached]
        metrics = client.get_run(row.run_id).data.metrics
        assert metrics["n_calls"] == len(calls)
        assert metrics["n_errors"] == sum(not r.ok for r in calls)
        for q in (50, 95, 99):
            assert metrics[f"latency_p{q}_s"] == pytest.approx(float(np.percentile(timed, q)))
        assert metrics["output_tokens"] == sum(r.usage.output_tokens for r in calls if r.ok)
