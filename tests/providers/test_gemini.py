import asyncio

import pytest

from llmflow.errors import AuthenticationError, BadResponse, ModelNotFound, RateLimited, ServerError
from llmflow.providers.gemini import GeminiProvider
from tests.fakes.server import Response, sse
from tests.helpers import complete


def provider(fake, model="gemini-2.5-flash", key="test-gemini-key"):
    return GeminiProvider(model, api_key=key, base_url=fake.url, timeout_s=5)


@pytest.mark.parametrize("stream", [True, False])
def test_usage_maps_thinking_into_output(fake_gemini, stream):
    fake_gemini.prompt_tokens, fake_gemini.candidates_tokens = 12, 30
    fake_gemini.thoughts_tokens, fake_gemini.cached_tokens = 8, 4
    completion, timing = complete(
        provider(fake_gemini), "What is MLflow?", system="Be brief", stream=stream
    )
    usage = completion.usage
    assert completion.text == "Echo: What is MLflow?"
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (12, 38, 8)
    assert usage.cached_input_tokens == 4 and usage.total_tokens == 50
    assert completion.finish_reason == "STOP"
    assert (timing.ttft_s is not None) is stream
    request = fake_gemini.generation_requests()[-1]
    assert ("streamGenerateContent" in request.path) is stream
    assert request.body["systemInstruction"]["parts"][0]["text"] == "Be brief"
    fake_gemini.thoughts_tokens = fake_gemini.cached_tokens = 0


def test_settings_are_sent_as_generation_config(fake_gemini):
    complete(
        provider(fake_gemini), temperature=0.7, max_tokens=64, top_p=0.9, seed=7, stop=("END",)
    )
    config = fake_gemini.generation_requests()[-1].body["generationConfig"]
    assert config == {
        "temperature": 0.7,
        "maxOutputTokens": 64,
        "topP": 0.9,
        "seed": 7,
        "stopSequences": ["END"],
    }


def test_key_travels_in_header_not_url(fake_gemini):
    complete(provider(fake_gemini))
    request = fake_gemini.generation_requests()[-1]
    assert request.headers["x-goog-api-key"] == "test-gemini-key"
    assert "test-gemini-key" not in request.path


@pytest.mark.parametrize(
    ("fault", "error"), [("429", RateLimited), ("500", ServerError), ("malformed", BadResponse)]
)
def test_faults_are_translated(fake_gemini, fault, error):
    fake_gemini.inject(fault)
    with pytest.raises(error):
        complete(provider(fake_gemini))
    assert len(fake_gemini.generation_requests()) == 1, "the SDK must not retry on its own"


def test_rate_limit_carries_retry_after(fake_gemini):
    fake_gemini.retry_after_s = 7
    fake_gemini.inject("429")
    with pytest.raises(RateLimited) as info:
        complete(provider(fake_gemini))
    assert info.value.retry_after == 7
    fake_gemini.retry_after_s = 0.01


def test_bad_key_and_unknown_model(fake_gemini):
    with pytest.raises(AuthenticationError):
        asyncio.run(provider(fake_gemini, key="wrong").check())
    with pytest.raises(ModelNotFound):
        asyncio.run(provider(fake_gemini, model="gemini-9").check())
    asyncio.run(provider(fake_gemini).check())


def test_a_stream_cut_off_before_its_finish_reason_fails(fake_gemini):
    fake_gemini.truncate_stream = True
    with pytest.raises(BadResponse, match="cut off"):
        complete(provider(fake_gemini), "one two three four", stream=True)


def test_a_blocked_prompt_is_an_answer_not_a_cut_off_stream(fake_gemini):
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}}
    fake_gemini.raw_response = Response(chunks=[sse(blocked)], content_type="text/event-stream")
    completion, _ = complete(provider(fake_gemini), stream=True)
    assert completion.text == "" and completion.finish_reason == "PROMPT_BLOCKED:SAFETY"
