"""ChatModel.predict as a notebook or an async web handler calls it, against the fake OpenAI."""

import asyncio
from types import SimpleNamespace

import pytest

from llmflow.errors import LlmflowError
from llmflow.serving.chat_model import ChatModel, PartialAnswers


@pytest.fixture
def model(fake_openai, monkeypatch):
    monkeypatch.setenv("SERVING_KEY", fake_openai.api_key)
    entry = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "base_url": f"{fake_openai.url}/v1",
        "api_key_env": "SERVING_KEY",
        "max_retries": 0,
    }
    chat = ChatModel()
    chat.load_context(SimpleNamespace(model_config={"entry": entry, "system": None}))
    return chat


def test_predict_inside_a_running_event_loop(model):
    async def notebook_cell():
        asyncio.get_running_loop()  # as in Jupyter or a FastAPI handler
        return model.predict(None, ["a", "b"])

    assert asyncio.run(notebook_cell()) == ["Echo: a", "Echo: b"]
    assert model.predict(None, "outside") == ["Echo: outside"]


def test_one_failed_prompt_keeps_the_other_answers(model, fake_openai):
    fake_openai.inject("500")  # whichever request arrives first
    prompts = ["a", "b", "c"]
    with pytest.warns(
        PartialAnswers, match=r"1 of 3 prompts failed.*input\[\d\]: ServerError"
    ) as w:
        answers = model.predict(None, prompts)
    failed = [i for i, answer in enumerate(answers) if answer is None]
    assert len(failed) == 1
    assert all(answers[i] == f"Echo: {p}" for i, p in enumerate(prompts) if i not in failed)
    assert list(w[0].message.failures) == failed


def test_every_prompt_failed_raises(model, fake_openai):
    fake_openai.inject("500", "500")
    with pytest.raises(LlmflowError, match=r"every prompt failed: input\[0\]: ServerError"):
        model.predict(None, ["a", "b"])
