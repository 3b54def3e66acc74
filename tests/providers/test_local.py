"""The real Gemma 3 270M through llama.cpp: short prompts, small max_tokens."""

import asyncio
import json
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp", reason="needs the [local] extra")

from typer.testing import CliRunner  # noqa: E402

from llmflow.cli import app  # noqa: E402
from llmflow.errors import BadRequest, ModelNotFound  # noqa: E402
from llmflow.providers import llama_engine  # noqa: E402
from llmflow.providers.local import LocalProvider, render_prompt  # noqa: E402
from llmflow.types import Message  # noqa: E402
from tests.helpers import complete, serve_and_ask, write_experiment  # noqa: E402

pytestmark = pytest.mark.local_model


def ask(**settings):
    return complete(LocalProvider(), "What does MLflow track?", **settings)


def test_answers_with_consistent_token_counts():
    completion, timing = ask(max_tokens=24, temperature=0.7)
    assert completion.text.strip()
    usage = completion.usage
    loaded = llama_engine.load_model("gemma-3-270m")
    prompt = render_prompt((Message("user", "What does MLflow track?"),), None)
    assert usage.input_tokens == len(loaded.llm.tokenize(prompt.encode()))
    assert 0 < usage.output_tokens <= 24
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    assert completion.finish_reason in ("stop", "length")
    assert timing.ttft_s is not None and 0 < timing.ttft_s <= timing.latency_s


def test_temperature_zero_with_seed_repeats_exactly():
    first, _ = ask(max_tokens=20, temperature=0.0, seed=42)
    second, _ = ask(max_tokens=20, temperature=0.0, seed=42)
    assert first.text == second.text and first.usage == second.usage


TICKET = (  # t017 of examples/data/tickets_test.csv, whose answer changed so
    "Hello team, my changes are not saved, the desktop client shows 'connection refused' "
    "every time. Please help."
)
FEW_SHOT = (
    "{system}\n\nTicket: I was charged twice for my subscription.\nLabel: billing\n\n"
    "Ticket: {prompt}\nLabel:"
)


def test_a_seeded_answer_does_not_depend_on_the_call_before():
    """Two variants sharing the model (the classifier example's zero- and few-shot) take turns:
    llama.cpp's reuse of the previous prompt's cached start changed seeded greedy answers."""
    from llmflow.config.labels import instruction

    system = instruction(["billing", "technical", "account", "other"])
    settings = {"temperature": 0.0, "seed": 42, "stop": ("\n\n", "\nQuestion:")}
    zero_shot, few_shot = LocalProvider(), LocalProvider(prompt_template=FEW_SHOT)
    llama_engine.load_model("gemma-3-270m").llm.reset()  # nothing cached: the reference
    answers = [complete(zero_shot, TICKET, system=system, max_tokens=8, **settings)[0].text]
    for before in (zero_shot, few_shot):
        complete(
            before, "Do you have an office in Berlin?", system=system, max_tokens=4, **settings
        )
        answers.append(complete(zero_shot, TICKET, system=system, max_tokens=8, **settings)[0].text)
    complete(few_shot, TICKET, system=system, max_tokens=4, **settings)
    answers.append(complete(zero_shot, TICKET, system=system, max_tokens=8, **settings)[0].text)
    assert len(set(answers)) == 1, answers


def test_seed_repeats_at_nonzero_temperature():
    first, _ = ask(max_tokens=20, temperature=0.9, seed=7)
    second, _ = ask(max_tokens=20, temperature=0.9, seed=7)
    assert first.text == second.text


def test_stop_sequences_end_the_answer():
    completion, _ = ask(max_tokens=60, temperature=0.0, seed=1, stop=(" ",))
    assert " " not in completion.text.strip()
    assert completion.finish_reason == "stop"


def test_non_streaming_has_no_ttft():
    completion, timing = ask(max_tokens=8, temperature=0.0, seed=1, stream=False)
    assert completion.text and timing.ttft_s is None


def test_model_is_loaded_once_per_process():
    a = llama_engine.load_model("gemma-3-270m")
    b = llama_engine.load_model("gemma-3-270m")
    assert a is b


def test_unknown_model_path_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelNotFound, match="neither gemma-3-270m nor an existing .gguf file"):
        asyncio.run(LocalProvider(str(tmp_path / "missing.gguf")).check())


def test_prompt_rendering():
    user = Message("user", "Hi?")
    assert render_prompt((user,), None).endswith("\n\nQuestion: Hi?\nAnswer:")
    system = Message("system", "Be terse.")
    assert render_prompt((system, user), None).startswith("Be terse.\n\n")
    turns = (user, Message("assistant", "Hello."), Message("user", "And?"))
    assert "Question: Hi?\nAnswer: Hello.\n\nQuestion: And?\nAnswer:" in render_prompt(turns, None)
    assert render_prompt((system, user), "<s>{system}|{prompt}") == "<s>Be terse.|Hi?"
    with pytest.raises(BadRequest):
        render_prompt((Message("assistant", "x"),), None)


def test_cli_run_on_the_local_model(tmp_path: Path):
    models = [
        {"provider": "local", "name": "t0.7", "temperature": 0.7, "max_tokens": 12},
        {"provider": "local", "name": "t0.6", "temperature": 0.6, "max_tokens": 12},
    ]
    path = write_experiment(tmp_path, models, experiment="quickstart")
    result = CliRunner().invoke(app, ["run", str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    compare = CliRunner().invoke(app, ["compare", "-e", "quickstart", "-f", "json"])
    rows = json.loads(compare.stdout)
    assert [r["variant_id"] for r in rows] == ["t0.6", "t0.7"]
    for row in rows:
        assert row["n_calls"] == 2 and row["n_errors"] == 0
        assert row["output_tokens"] > 0 and row["cost_kind"] == "local"
        assert row["estimated_cost_usd"] == 0


def test_registered_local_model_is_served(tmp_path: Path, tracking_uri: str):
    import os

    models = [
        {
            "provider": "local",
            "temperature": 0,
            "seed": 3,
            "max_tokens": 8,
            "register_as": "llm_local_chat",
        }
    ]
    path = write_experiment(tmp_path, models, experiment="serve-local")
    assert CliRunner().invoke(app, ["run", str(path)]).exit_code == 0
    answer = serve_and_ask(tracking_uri, "models:/llm_local_chat/1", dict(os.environ), "Hi?")
    assert len(answer) == 1 and answer[0].strip()


@pytest.mark.parametrize("seed", [7, 9, 10])
def test_list_answers_that_open_with_a_blank_line_are_not_empty(seed):
    # these seeds opened with "\n\n", which the default "\n\n" stop took for the end (issue #4)
    completion, _ = complete(
        LocalProvider(), "Give three tips to cut LLM latency.", seed=seed, max_tokens=24
    )
    assert completion.text.strip() and completion.text == completion.text.lstrip()
