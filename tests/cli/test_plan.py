"""`llmflow plan`: the prompts a run needs to tell its variants apart, before paying for it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import invoke_cli, write_experiment

MODELS = [
    {"provider": "openai", "model": m, "name": m, "base_url": "http://127.0.0.1:9/v1"}
    for m in ("a", "b", "c")
]


def test_plan_sizes_the_prompts_for_a_difference(tmp_path: Path):
    path = write_experiment(tmp_path, MODELS, repeats=5)
    shown = invoke_cli("plan", str(path), "--detect", "0.1", "--discordance", "0.2")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "3 variant(s) x 2 prompt(s) x 5 repeat(s) = 30 calls; 3 pair(s)" in text
    assert "level 0.017: 5% after Holm's correction for 3 pair(s)" in text
    # Connor: (2.394 * sqrt(0.2) + 0.8416 * sqrt(0.19))^2 / 0.01 = 206.6 at alpha 0.05 / 3
    assert "about 207 prompts; the file has 2 (too few)" in text
    assert "Repeats do not replace prompts" in text


def test_plan_reads_the_disagreement_of_an_earlier_run(tmp_path: Path, fake_openai, tracking_uri):
    prompts = [{"id": f"p{i}", "user": f"Q{i}?"} for i in range(10)]
    for i, prompt in enumerate(prompts):  # they disagree on p0 and p1: 20% of the prompts
        fake_openai.scripted[("a", prompt["user"])] = "yes" if i != 0 else "no"
        fake_openai.scripted[("b", prompt["user"])] = "yes" if i != 1 else "no"
    models = [
        {
            "provider": "openai",
            "model": m,
            "name": m,
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "K",
        }
        for m in ("a", "b")
    ]
    path = write_experiment(
        tmp_path, models, prompts=prompts, scorers=[{"type": "equals", "value": "yes"}]
    )
    assert invoke_cli("run", str(path), env={"K": "test-openai-key"}).exit_code == 0
    pairs = json.loads(
        invoke_cli("compare", "-e", "provider-comparison", "--pairs", "-f", "json").stdout
    )
    assert [p["a_higher"] + p["b_higher"] for p in pairs if p["metric"] == "pass_rate"] == [2]
    shown = invoke_cli("plan", str(path), "--from", "provider-comparison")
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.stdout.split())
    assert "disagree on 20% of the prompts (observed in run" in text
    assert "about 626 prompts" in text


def test_plan_without_a_comparable_run_says_what_to_give(tmp_path: Path, fake_openai, tracking_uri):
    models = [
        {
            "provider": "openai",
            "model": "a",
            "base_url": f"{fake_openai.url}/v1",
            "api_key_env": "K",
        }
    ]
    path = write_experiment(tmp_path, models)
    assert invoke_cli("run", str(path), env={"K": "test-openai-key"}).exit_code == 0
    shown = invoke_cli("plan", str(path), "--from", "provider-comparison")
    assert shown.exit_code == 1
    assert "give --discordance instead" in shown.output


def test_plan_refuses_one_variant_and_two_sources_of_disagreement(tmp_path: Path):
    path = write_experiment(tmp_path, MODELS[:1])
    shown = invoke_cli("plan", str(path))
    assert shown.exit_code == 2 and "at least two are needed" in shown.output
    path = write_experiment(tmp_path, MODELS)
    shown = invoke_cli("plan", str(path), "--discordance", "0.1", "--from", "x")
    assert shown.exit_code == 2 and "give one" in shown.output
