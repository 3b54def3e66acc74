"""Pairwise verdicts of a real run: two models on the fake OpenAI server, whose answers are known
per prompt and per model, scored by an `equals` check; `compare --pairs`, pairs.json in the
report folder and in the parent run, and the interpretation's sentence."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient

from tests.helpers import invoke_cli, write_experiment

RIGHT, WRONG = "right", "wrong"


def test_repeats_at_temperature_0_do_not_make_a_winner(tmp_path: Path, tracking_uri, fake_openai):
    """20 prompts x 10 repeats; model-a right on 13 prompts, model-b on 10 of those."""
    prompts = [{"id": f"p{i:02d}", "user": f"Question {i}?"} for i in range(20)]
    for i, prompt in enumerate(prompts):
        fake_openai.scripted[("model-a", prompt["user"])] = RIGHT if i < 13 else WRONG
        fake_openai.scripted[("model-b", prompt["user"])] = RIGHT if i < 10 else WRONG
    models = [
        {
            "provider": "openai",
            "model": name,
            "name": name,
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "K",
            "temperature": 0,
        }
        for name in ("model-a", "model-b")
    ]
    path = write_experiment(
        tmp_path,
        models,
        prompts=prompts,
        repeats=10,
        concurrency=8,
        report=True,
        scorers=[{"type": "equals", "value": RIGHT}],
    )
    out = tmp_path / "out"
    ran = invoke_cli("run", str(path), "--out", str(out), env={"K": "test-openai-key"})
    assert ran.exit_code == 0, ran.output

    shown = invoke_cli("compare", "-e", "provider-comparison", "--pairs", "-f", "json")
    assert shown.exit_code == 0, shown.output
    pairs = json.loads(shown.stdout)
    (quality,) = [p for p in pairs if p["metric"] == "pass_rate"]
    assert (quality["a"], quality["b"], quality["n_pairs"]) == ("model-a", "model-b", 20)
    assert quality["p_value"] == 0.25 and quality["mid_p"] == 0.125
    assert quality["verdict"] == "not_distinguishable"

    assert json.loads((out / "pairs.json").read_text()) == pairs
    client = MlflowClient(tracking_uri)
    parent = client.search_runs(
        [client.get_experiment_by_name("provider-comparison").experiment_id],
        "tags.`llmflow.kind` = 'experiment-run'",
    )[0]
    stored = Path(client.download_artifacts(parent.info.run_id, "report/pairs.json"))
    assert json.loads(stored.read_text()) == pairs

    report = (out / "report.md").read_text()
    assert "model-a has the highest pass rate (65.0%) but is **not distinguishable**" in report
    assert "exact McNemar test on the 20 prompts both answered" in report
    assert "more repeats would not help" in report
    assert "## Pairwise comparisons" in report

    # the interval counts prompts: 13 of 20, every repeat alike, is Wilson at 19 (G - 1)
    assert "| model-a | 65.0% | 42.8%-82.2% | 200 | 0 | - | 0.650 (0.428-0.822) |" in report

    table = invoke_cli("compare", "-e", "provider-comparison", "--pairs")
    assert "| pass rate | model-a | model-b | 20 | +15.0 pts |" in table.stdout
