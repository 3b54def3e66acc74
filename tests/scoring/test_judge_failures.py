"""A judge that cannot be used is found before any call is paid; one that fails mid-run is said
in one line with exit 1, and `llmflow score` asks it again."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient

from llmflow.judge_journal import read_entries
from tests.helpers import compare_rows, free_port, invoke_cli, ollama_models, write_experiment
from tests.scoring.test_run_quality import PROMPTS

KEY = {"OPENAI_API_KEY": "test-openai-key"}


def openai_judge(base_url: str, **extra) -> dict:
    return {
        "type": "judge",
        "name": "correct",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": base_url,
        "rubric": "Is the answer correct?",
        "max_retries": 0,
        "price_per_mtok": {"input": 1.0, "output": 2.0},
        **extra,
    }


def one_error_line(result) -> str:
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_unreachable_judge_stops_the_run_before_any_call(tmp_path: Path, fake_ollama):
    judge = openai_judge(f"http://127.0.0.1:{free_port()}/v1")
    path = write_experiment(tmp_path, ollama_models(fake_ollama), prompts=PROMPTS, scorers=[judge])
    result = invoke_cli("run", str(path), env=KEY)
    assert result.exit_code == 1, result.output
    line = one_error_line(result)
    assert "scorers[0]: the judge openai gpt-4o-mini cannot be used" in line, line
    assert "no call was made" in line
    assert fake_ollama.generation_requests() == [], "a judged call was paid for first"


def test_a_judge_without_its_key_stops_the_run_before_any_call(
    tmp_path: Path, fake_ollama, fake_openai
):
    judge = openai_judge(f"{fake_openai.url}/v1", api_key_env="NO_SUCH_JUDGE_KEY")
    path = write_experiment(tmp_path, ollama_models(fake_ollama), prompts=PROMPTS, scorers=[judge])
    result = invoke_cli("run", str(path), env=KEY)
    assert result.exit_code == 1, result.output
    assert "NO_SUCH_JUDGE_KEY" in one_error_line(result)
    assert fake_ollama.generation_requests() == []


def test_a_failing_judge_exits_1_and_score_asks_it_again(
    tmp_path: Path, tracking_uri: str, fake_ollama, fake_openai
):
    judge = openai_judge(f"{fake_openai.url}/v1")
    path = write_experiment(
        tmp_path, ollama_models(fake_ollama), prompts=PROMPTS, repeats=2, scorers=[judge]
    )
    fake_openai.fault_rate, fake_openai.fault_kinds = 1.0, ("429",)
    ran = invoke_cli("run", str(path), "--tracking-uri", tracking_uri, env=KEY)
    assert ran.exit_code == 1, ran.output
    assert "4 judge verdict(s) failed" in ran.stderr and "RateLimited" in ran.stderr
    (row,) = compare_rows()
    assert row["n_calls"] == 4 and row["n_errors"] == 0  # the judged calls themselves are fine
    assert MlflowClient(tracking_uri).get_run(row["run_id"]).data.metrics["judge_cost_usd"] == 0

    fake_openai.fault_rate = 0.0
    score = ["score", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    rescored = invoke_cli(*score, env=KEY)
    assert rescored.exit_code == 0, rescored.output
    assert "4 judge call(s) made" in rescored.stdout
    assert len(fake_openai.completed) == 4
    metrics = MlflowClient(tracking_uri).get_run(row["run_id"]).data.metrics
    assert metrics["n_score_errors"] == 0
    (ledger,) = (tmp_path / ".llmflow" / "journals").glob("*.judges.jsonl")
    paid = sum(e.record.cost.usd for e in read_entries(ledger))
    assert metrics["judge_cost_usd"] == paid > 0
    again = invoke_cli(*score, env=KEY)
    assert again.exit_code == 0 and "nothing changed" in again.stdout, again.output
    assert len(fake_openai.completed) == 4, "a judge answer was paid for twice"


def test_score_pays_its_judges_within_the_files_budget(
    tmp_path: Path, tracking_uri: str, fake_ollama, fake_openai
):
    """`llmflow score` once paid every judge whatever max_cost_usd said."""
    judge = openai_judge(f"{fake_openai.url}/v1")
    path = write_experiment(
        tmp_path, ollama_models(fake_ollama), prompts=PROMPTS, repeats=2, scorers=[judge]
    )
    fake_openai.fault_rate, fake_openai.fault_kinds = 1.0, ("429",)
    assert invoke_cli("run", str(path), "--tracking-uri", tracking_uri, env=KEY).exit_code == 1
    fake_openai.fault_rate = 0.0
    tight = write_experiment(
        tmp_path,
        ollama_models(fake_ollama),
        name="tight.yaml",
        prompts=PROMPTS,
        repeats=2,
        scorers=[judge],
        max_cost_usd=1e-9,
        allow_unpriced=True,
    )
    score = ["score", "-e", "provider-comparison", "--tracking-uri", tracking_uri]
    rescored = invoke_cli(*score, "--config", str(tight), env=KEY)
    assert len(fake_openai.completed) == 0, rescored.output
    assert "judge verdict(s) failed" in rescored.output
