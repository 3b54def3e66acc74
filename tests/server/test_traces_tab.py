"""The MLflow Traces tab, read through the REST API its page calls, and in a real browser:
each call's trace names its variant and prompt, a judge's trace says it is a judge's, an
unpriced call of a model MLflow cannot price shows its tokens, the parent run's row has numbers,
and the experiment carries llmflow's view of the tab."""

from __future__ import annotations

import base64
import json
import os
import urllib.request
import zlib
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.helpers import invoke_cli, write_experiment
from tests.server.conftest import start_mlflow

PROMPTS = [
    {"id": "capital", "user": "Capital of France?", "expected": "Paris"},
    {"id": "river", "user": "Longest river?"},
]


@pytest.fixture(scope="module")
def served(tmp_path_factory, fake_openai):
    """Two self-hosted OpenAI-style models, both unpriced: `gpt-4o-mini`, a name MLflow's own
    catalog prices, and `llama-3-8b`, one it does not; a judge; then `mlflow server`."""
    root = tmp_path_factory.mktemp("traces_tab")
    entry = {"provider": "openai", "base_url": f"{fake_openai.url}/v1", "api_key_env": "K"}
    models = [{**entry, "model": "gpt-4o-mini"}, {**entry, "model": "llama-3-8b"}]
    judge = {**entry, "type": "judge", "name": "correct", "model": "judge-model"}
    judge["rubric"] = "Is the answer correct?"
    path = write_experiment(root, models, prompts=PROMPTS, scorers=[judge], repeats=2)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    env = {"K": "test-openai-key", "MLFLOW_TRACKING_URI": uri}
    result = invoke_cli("run", str(path), env=env)
    assert result.exit_code == 0, result.output
    server = start_mlflow(root / "server", uri, workers=1)
    try:
        yield server
    finally:
        server.stop()


def rest(server, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{server.url}/ajax-api/{path}", data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.load(answer)


def experiment(server) -> dict:
    found = rest(server, "2.0/mlflow/experiments/get-by-name?experiment_name=provider-comparison")
    return found["experiment"]


def trace_list(server) -> list[dict]:
    """What the Traces tab lists: POST traces/search, as its page sends it."""
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "1"}}
    location["mlflow_experiment"]["experiment_id"] = experiment(server)["experiment_id"]
    body = {"locations": [location], "max_results": 100, "order_by": ["timestamp_ms DESC"]}
    return rest(server, "3.0/mlflow/traces/search", body)["traces"]


def by_name(server) -> dict[str, dict]:
    return {t["tags"]["mlflow.traceName"]: t for t in trace_list(server)}


def test_each_trace_names_its_variant_and_call_and_a_judge_says_so(served):
    names = set(by_name(served))
    calls = {f"{m} | {case}#{r}" for m in ("gpt-4o-mini", "llama-3-8b") for case in
             ("capital", "river") for r in (0, 1)}  # fmt: skip
    judges = {f"judge:correct | {call}" for call in calls}
    assert names == calls | judges


def test_an_unpriced_call_shows_its_tokens_where_mlflow_cannot_misprice_them(served):
    traces = by_name(served)
    unknown = traces["llama-3-8b | capital#0"]["trace_metadata"]
    assert json.loads(unknown["mlflow.trace.tokenUsage"])["total_tokens"] == 44
    assert "mlflow.trace.cost" not in unknown  # unpriced: no cost, from anyone
    judged = traces["judge:correct | llama-3-8b | capital#0"]["trace_metadata"]
    assert "mlflow.trace.tokenUsage" in judged and "mlflow.trace.cost" not in judged
    # MLflow's catalog has a price for the name: tokens beside it would be costed at OpenAI's
    # rate, though this server is not OpenAI; they stay apart (the span's llmflow.token_usage)
    known = traces["gpt-4o-mini | capital#0"].get("trace_metadata", {})
    assert "mlflow.trace.tokenUsage" not in known and "mlflow.trace.cost" not in known


def test_the_parent_run_row_has_params_and_metrics(served):
    body = {"experiment_ids": [experiment(served)["experiment_id"]],
            "filter": "tags.`llmflow.kind` = 'experiment-run'"}  # fmt: skip
    (parent,) = rest(served, "2.0/mlflow/runs/search", body)["runs"]
    params = {p["key"]: p["value"] for p in parent["data"]["params"]}
    metrics = {m["key"]: m["value"] for m in parent["data"]["metrics"]}
    assert params["n_variants"] == "2" and params["n_prompts"] == "2"
    assert params["repeats"] == "2" and params["task_type"] == "chat"
    assert metrics["n_calls"] == 8 and metrics["n_errors"] == 0 and metrics["error_rate"] == 0
    assert "estimated_cost_usd" not in metrics  # unpriced variants: unknown, not 0


def test_the_experiment_carries_a_view_with_the_trace_names(served):
    tags = {t["key"]: t["value"] for t in experiment(served)["tags"]}
    view = json.loads(tags["mlflow.tracesV4ViewState.llmflow"])
    state = json.loads(zlib.decompress(base64.b64decode(view["state"].removeprefix("deflate;"))))
    assert view["name"] == "llmflow calls"
    assert state["single"]["cols"].split(",")[:3] == ["start_time", "trace_name", "input"]


@pytest.mark.skipif(chromium() is None, reason="needs Debian's chromium package")
def test_the_traces_tab_in_a_browser_shows_the_names(served, tmp_path: Path):
    pytest.importorskip("websockets")
    from tests.browser import Browser

    experiment_id = experiment(served)["experiment_id"]
    url = f"{served.url}/#/experiments/{experiment_id}/traces?traceViewShareKey=llmflow"
    with Browser(width=1600, height=900) as browser:
        browser.open(url, "document.body.innerText.includes('llama-3-8b | capital#0')")
        for button in ("Got it", "Close"):  # MLflow's first-visit hints and assistant panel
            browser.click_button(button)
        text = browser.evaluate("document.body.innerText")
        assert "judge:correct | gpt-4o-mini | river#1" in text
        assert "Trace name" in text and "Tokens" in text
        shot = browser.screenshot(tmp_path / "traces_tab.png")
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("LLMFLOW_TRACES_SCREENSHOT"):  # docs/traces-tab.png
        Path(target).write_bytes(shot.read_bytes())
