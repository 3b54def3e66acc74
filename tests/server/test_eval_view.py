"""MLflow's evaluation views of a variant run, through the REST calls their page makes, and in a
real browser: the run's table lists its own calls only, each with its assessments (the judges'
calls stay in the experiment); "compare to" pairs two variants' answers to each prompt (the UI
matches rows by request preview); each variant carries its parent's dataset inputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.helpers import invoke_cli, write_experiment
from tests.server.conftest import start_mlflow
from tests.server.test_traces_tab import experiment, rest

PROMPTS = [
    {"id": "capital", "user": "Capital of France?", "expected": "Paris"},
    {"id": "river", "user": "Longest river in Africa?", "expected": "Nile"},
    {"id": "ocean", "user": "Largest ocean?", "expected": "Pacific"},
]
ANSWERS = {
    "gpt-4o-mini": ["Paris is the capital of France.", "The Nile.", "The Pacific Ocean."],
    "llama-3-8b": ["Lyon.", "The Nile, about 6,650 km long.", "The Atlantic."],
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory, fake_openai):
    """Two variants with known, different answers; a judge and a length check; `mlflow server`
    on the store they were written to: a sqlite file, or PostgreSQL (as a team's server)."""
    root = tmp_path_factory.mktemp(f"eval_view_{request.param}")
    for model, answers in ANSWERS.items():
        for prompt, answer in zip(PROMPTS, answers, strict=True):
            fake_openai.scripted[(model, prompt["user"])] = answer
    entry = {"provider": "openai", "base_url": f"{fake_openai.url}/v1", "api_key_env": "K"}
    models = [{**entry, "model": model} for model in ANSWERS]
    judge = {**entry, "type": "judge", "name": "correct", "model": "judge-model"}
    judge["rubric"] = "Is the answer correct?"
    brief = {"type": "length", "max": 20, "name": "brief"}
    path = write_experiment(root, models, prompts=PROMPTS, scorers=[judge, brief])
    if request.param == "sqlite":
        uri = f"sqlite:///{root / 'mlflow.db'}"
    else:
        uri = request.getfixturevalue("postgres").create_database("eval_view")
    result = invoke_cli("run", str(path), env={"K": "test-openai-key", "MLFLOW_TRACKING_URI": uri})
    assert result.exit_code == 0, result.output
    server = start_mlflow(root / "server", uri, workers=1)
    try:
        yield server
    finally:
        server.stop()


def experiment_id(server) -> str:
    return experiment(server)["experiment_id"]


def runs(server) -> dict[str, dict]:
    """The experiment's runs by name (a variant's is its id; the parent's is the file's stem)."""
    body = {"experiment_ids": [experiment_id(server)], "max_results": 100}
    return {r["info"]["run_name"]: r for r in rest(server, "2.0/mlflow/runs/search", body)["runs"]}


def run_traces(server, run_id: str) -> list[dict]:
    """A run's evaluation table: POST traces/search with the filter its page sends."""
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": ""}}
    location["mlflow_experiment"]["experiment_id"] = experiment_id(server)
    body = {
        "locations": [location],
        "filter": f"attributes.run_id = '{run_id}'",
        "max_results": 100,
        "order_by": ["timestamp_ms DESC"],
    }
    return rest(server, "3.0/mlflow/traces/search", body)["traces"]


def rows_by_request(traces: list[dict]) -> dict[str, dict]:
    """The UI's row key in "compare to" (its bundle: a trace's request_preview, a repeated one
    only once): each key must appear once, so every row pairs."""
    keys = [t["request_preview"] for t in traces]
    assert len(keys) == len(set(keys)), keys
    return dict(zip(keys, traces, strict=True))


def feedback(trace: dict) -> dict[str, object]:
    return {a["assessment_name"]: a["feedback"].get("value") for a in trace["assessments"]}


def test_a_variant_table_lists_its_own_calls_each_assessed(served):
    for model, answers in ANSWERS.items():
        traces = run_traces(served, runs(served)[model]["info"]["run_id"])
        names = sorted(t["tags"]["mlflow.traceName"] for t in traces)
        assert names == sorted(f"{model} | {p['id']}#0" for p in PROMPTS)  # no judge:...
        for trace in traces:
            assert set(feedback(trace)) == {"correct", "brief"}
            assert trace["response_preview"] in answers


def test_the_judges_calls_stay_in_the_experiment_named_for_the_call_they_graded(served):
    location = {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": ""}}
    location["mlflow_experiment"]["experiment_id"] = experiment_id(served)
    body = {"locations": [location], "max_results": 100, "filter": "tags.`llmflow.role` = 'judge'"}
    judges = rest(served, "3.0/mlflow/traces/search", body)["traces"]
    assert len(judges) == 6
    variant_runs = {runs(served)[m]["info"]["run_id"] for m in ANSWERS}
    assert {t["tags"]["llmflow.judged_run"] for t in judges} == variant_runs
    assert all("mlflow.sourceRun" not in t.get("trace_metadata", {}) for t in judges)


def test_compare_to_pairs_the_two_variants_answers_prompt_by_prompt(served):
    found = runs(served)
    mini = rows_by_request(run_traces(served, found["gpt-4o-mini"]["info"]["run_id"]))
    llama = rows_by_request(run_traces(served, found["llama-3-8b"]["info"]["run_id"]))
    assert set(mini) == set(llama) == {p["user"] for p in PROMPTS}
    capital = PROMPTS[0]["user"]
    assert mini[capital]["response_preview"] == "Paris is the capital of France."
    assert llama[capital]["response_preview"] == "Lyon."
    assert (feedback(mini[capital])["correct"], feedback(llama[capital])["correct"]) == (1.0, 0.0)


def test_each_variant_shows_its_parents_dataset(served):
    found = runs(served)
    parent = next(r for r in found.values() if "mlflow.parentRunId" not in _tags(r))

    def datasets(run: dict) -> list[dict]:
        got = rest(served, f"2.0/mlflow/runs/get?run_id={run['info']['run_id']}")["run"]
        return [d["dataset"] for d in got.get("inputs", {}).get("dataset_inputs", [])]

    for model in ANSWERS:
        assert datasets(found[model]) == datasets(parent)


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


@pytest.mark.skipif(chromium() is None, reason="needs Chromium (Debian's chromium package)")
def test_the_compare_view_in_a_browser_pairs_the_answers(served, tmp_path: Path, request):
    pytest.importorskip("websockets", reason="the browser is driven over websockets")
    if request.node.callspec.params["served"] != "sqlite":
        pytest.skip("the page is the same whatever the store: looked at once, on sqlite")
    from tests.browser import Browser

    found = runs(served)
    mini, llama = (found[m]["info"]["run_id"] for m in ANSWERS)
    base = f"{served.url}/#/experiments/{experiment_id(served)}"
    with Browser(width=1600, height=1000) as browser:
        browser.open(f"{base}/runs/{mini}/traces", "document.body.innerText.includes('Lyon') ||"
                     " document.body.innerText.includes('Paris is the capital')")  # fmt: skip
        for button in ("Got it", "Close"):  # MLflow's first-visit hints and assistant panel
            browser.click_button(button)
        table = browser.evaluate("document.body.innerText")
        assert "Paris is the capital of France." in table and "judge:correct" not in table
        browser.screenshot(tmp_path / "eval-table.png")
        browser.open(
            f"{base}/runs/{mini}/traces?compareToRunUuid={llama}",
            "document.body.innerText.includes('Lyon.')",
        )
        text = browser.evaluate("document.body.innerText")
        assert "Paris is the capital of France." in text and "The Atlantic." in text
        assert "3 of 3" in text  # three rows, each pairing the two variants' answers
        shot = browser.screenshot(tmp_path / "compare.png")
        # the Evaluation runs list: the parent run, its two variants under it
        browser.open(f"{base}/evaluation-runs", "document.body.innerText.includes('llama-3-8b')")
        assert "gpt-4o-mini" in browser.evaluate("document.body.innerText")
        browser.screenshot(tmp_path / "runs.png")
    assert shot.stat().st_size > 10_000
    if target := os.environ.get("LLMFLOW_COMPARE_SCREENSHOT"):  # docs/img/mlflow-compare.png
        Path(target).write_bytes(shot.read_bytes())
