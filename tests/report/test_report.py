"""The report of real runs against the fake servers: files, MLflow, sweeps, warmup, baseline.

Verdicts that depend on latencies (fastest, not distinguishable, rises, outside the noise) are
tested on hand-built calls in test_interpret.py, where a loaded machine cannot change them."""

import json
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient
from PIL import Image
from typer.testing import CliRunner

from llmflow.cli import app
from tests.helpers import invoke_cli, write_experiment

PROMPT = [{"id": "q", "user": "What does MLflow track?"}]


def openai_models(fake, *names: str, **extra) -> list[dict]:
    return [
        {
            "provider": "openai",
            "model": name,
            "name": name,
            "base_url": f"{fake.url}/v1",
            "api_key_env": "K",
            **extra,
        }
        for name in names
    ]


def run(tmp_path: Path, models: list[dict], **fields) -> tuple[Path, object]:
    fields = {"prompts": PROMPT, "cache": False, "concurrency": 2, "report": True, **fields}
    path = write_experiment(tmp_path, models, **fields)
    result = CliRunner().invoke(
        app,
        ["run", str(path), "--out", str(tmp_path / "out")],
        env={"K": "test-openai-key"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "out", result


def test_report_files_are_self_contained_and_real(tmp_path: Path, fake_openai):
    fake_openai.model_delays = {"a": 0.01, "b": 0.02}
    out, _ = run(
        tmp_path, openai_models(fake_openai, "a", "b", price_as="openai/gpt-4o-mini"), repeats=3
    )
    page = (out / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page), "the page must not fetch anything"
    assert page.count('src="data:image/png;base64,') == 3
    for name in ("latency_distribution.png", "tokens.png", "cost_vs_latency.png"):
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.size == (800, 450)
    md = (out / "report.md").read_text()
    seed_columns = "Model | Provider | Temperature | Latency (s) | Total tokens | Estimated cost"
    seed_header = f"| {seed_columns} | Task type |"
    assert md.split("\n\n")[2].startswith(seed_header), "the seed's table comes first"
    assert "per 1,000 calls" in md
    assert (out / "results.csv").read_text().startswith("model,provider,temperature")


def test_report_is_in_mlflow_and_regenerates_from_it(tmp_path: Path, tracking_uri, fake_openai):
    out, _ = run(tmp_path, openai_models(fake_openai, "a"), repeats=2)
    client = MlflowClient(tracking_uri)
    parent = json.loads(invoke_cli("compare", "-e", "provider-comparison", "-f", "json").stdout)[0]
    parent_id = client.get_run(parent["run_id"]).data.tags["mlflow.parentRunId"]
    stored = {f.path for f in client.list_artifacts(parent_id, "report")}
    assert {"report/report.md", "report/report.html", "report/results.json"} <= stored
    again = invoke_cli("report", "-e", "provider-comparison", "--out", str(tmp_path / "again"))
    assert again.exit_code == 0
    # the run's report, from the calls tables it had just written, is the one read back
    for name in ("results.json", "report.md", "report.html"):
        assert (tmp_path / "again" / name).read_text() == (out / name).read_text()


def test_sweep_variants_are_named_described_and_plotted(tmp_path: Path, fake_openai):
    out, _ = run(
        tmp_path,
        openai_models(fake_openai, "m"),
        repeats=4,
        sweep={"max_tokens": [5, 60], "temperature": [0.2]},
    )
    results = json.loads((out / "results.json").read_text())
    assert sorted(r["variant_id"] for r in results) == [
        "m[temperature=0.2,max_tokens=5]",
        "m[temperature=0.2,max_tokens=60]",
    ]
    report = (out / "report.md").read_text()
    assert re.search(
        r"Median latency of m \(temperature=0\.2\) [a-z ,]+ with max_tokens "
        r"\(5: \d\.\d{3} s, 60: \d\.\d{3} s\)",
        report,
    )
    with Image.open(out / "sweep_max_tokens.png") as image:
        assert image.size == (800, 450)


def test_warmup_calls_are_made_first_and_kept_apart(tmp_path: Path, tracking_uri, fake_openai):
    out, _ = run(tmp_path, openai_models(fake_openai, "m"), repeats=2, warmup=2)
    assert len(fake_openai.generation_requests()) == 4
    row = json.loads((out / "results.json").read_text())[0]
    assert row["n_calls"] == 2 and row["cold_start_latency_s"] > 0
    metrics = MlflowClient(tracking_uri).get_run(row["run_id"]).data.metrics
    assert metrics["n_warmup"] == 2 and metrics["n_timed"] == 2


def test_prompt_sizes_pad_prompts_and_plot(tmp_path: Path, fake_openai):
    out, _ = run(tmp_path, openai_models(fake_openai, "m"), prompt_sizes=[16, 256])
    sent = sorted(len(r.body["messages"][-1]["content"]) for r in fake_openai.generation_requests())
    assert sent[0] < 100 and 900 < sent[1] < 1100
    assert (out / "prompt_size.png").exists()
    assert "median latency by prompt size" in (out / "report.md").read_text()


def test_compare_against_the_previous_run(tmp_path: Path, tracking_uri, fake_openai):
    run(tmp_path, openai_models(fake_openai, "a"), repeats=3, report=False)
    run(tmp_path, openai_models(fake_openai, "a"), repeats=3, report=False)
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name("provider-comparison").experiment_id
    parents = client.search_runs(
        [experiment], "tags.`llmflow.kind` = 'experiment-run'", order_by=["start_time ASC"]
    )
    first, second = (p.info.run_id for p in parents)
    shown = invoke_cli("compare", "-e", "provider-comparison", "--baseline", "previous")
    assert shown.exit_code == 0
    assert shown.stdout.startswith(f"Baseline `{first}` -> current `{second}`")
    line = next(x for x in shown.stdout.splitlines() if x.startswith("| a |"))
    assert re.fullmatch(
        r"\| a \| \d\.\d{3} -> \d\.\d{3} \| [+-]\d+\.\d%( \*)? \| 132 -> 132 \| "
        r"unpriced -> unpriced \|",
        line,
    ), line
    assert "a, latency: sign test on the 1 prompts both answered" in shown.stdout


def test_tokens_the_server_did_not_send_stay_unknown(tmp_path: Path, monkeypatch, fake_openai):
    monkeypatch.setattr(fake_openai, "_usage", lambda: None)  # as a llama.cpp server streams
    out, result = run(tmp_path, openai_models(fake_openai, "llama"), repeats=2)
    row = json.loads(invoke_cli("compare", "-e", "provider-comparison", "-f", "json").stdout)[0]
    assert (row["total_tokens"], row["input_tokens"], row["output_tokens"]) == (None, None, None)
    assert (row["n_usage_missing"], row["n_empty"]) == (2, 0)
    assert "| llama | openai | default |" in result.stdout
    assert "tokens not reported by the server for 2 of 2 calls of llama" in result.stdout
    report = (out / "report.md").read_text()
    seed_row = next(line for line in report.splitlines() if line.startswith("| llama |"))
    assert seed_row.split(" | ")[4] == "-", seed_row
    assert "tokens not reported by the server for 2 of 2 calls" in report.split("## Interp")[1]


@pytest.mark.parametrize("repeats", [1])
def test_single_call_has_no_interval_and_says_so(tmp_path: Path, fake_openai, repeats):
    out, _ = run(tmp_path, openai_models(fake_openai, "solo"), repeats=repeats)
    assert "no interval: fewer than 2 prompts timed" in (out / "report.md").read_text()
