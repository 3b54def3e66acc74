import asyncio

import pytest

from llmflow.errors import (
    AuthenticationError,
    BadResponse,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
)
from llmflow.providers.base import collect
from llmflow.providers.openai_compat import OpenAICompatProvider, sse_data
from llmflow.types import GenerationSettings, Message
from tests.fakes.server import Response, sse
from tests.helpers import complete


def provider(fake, key="test-openai-key", timeout_s=5.0):
    return OpenAICompatProvider(
        "gpt-4o-mini", api_key=key, base_url=f"{fake.url}/v1", timeout_s=timeout_s
    )


@pytest.mark.parametrize("stream", [True, False])
def test_usage_with_reasoning_and_cached_details(fake_openai, stream):
    fake_openai.reasoning_tokens, fake_openai.cached_tokens = 5, 3
    completion, timing = complete(provider(fake_openai), "Hi there", stream=stream)
    usage = completion.usage
    assert completion.text == "Echo: Hi there"
    assert (usage.input_tokens, usage.output_tokens) == (19, 25)
    assert (usage.reasoning_tokens, usage.cached_input_tokens) == (5, 3)
    assert completion.finish_reason == "stop"
    assert (timing.ttft_s is not None) is stream
    body = fake_openai.generation_requests()[-1].body
    if stream:
        assert body["stream_options"] == {"include_usage": True}
    fake_openai.reasoning_tokens = fake_openai.cached_tokens = 0


def test_settings_are_sent(fake_openai):
    complete(provider(fake_openai), temperature=0.2, max_tokens=16, top_p=0.5, seed=1)
    body = fake_openai.generation_requests()[-1].body
    assert {k: body[k] for k in ("temperature", "max_tokens", "top_p", "seed")} == {
        "temperature": 0.2,
        "max_tokens": 16,
        "top_p": 0.5,
        "seed": 1,
    }


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("429", RateLimited),
        ("500", ServerError),
        ("malformed", BadResponse),
        ("drop", ProviderUnavailable),
    ],
)
def test_faults_are_translated_without_sdk_retries(fake_openai, fault, error):
    fake_openai.inject(fault)
    with pytest.raises(error):
        complete(provider(fake_openai))
    assert len(fake_openai.generation_requests()) == 1, "max_retries=0: the runner owns retries"


def test_timeout(fake_openai):
    fake_openai.hang_s = 1.0
    fake_openai.inject("timeout")
    with pytest.raises(ProviderTimeout):
        complete(provider(fake_openai, timeout_s=0.2))


def test_wrong_key(fake_openai):
    with pytest.raises(AuthenticationError):
        asyncio.run(provider(fake_openai, key="wrong").check())


def test_a_stream_cut_off_before_its_finish_reason_fails(fake_openai):
    fake_openai.truncate_stream = True
    with pytest.raises(BadResponse, match="cut off"):
        complete(provider(fake_openai), "one two three four", stream=True)


def test_a_finished_stream_without_usage_is_complete_with_usage_unknown(fake_openai):
    fake_openai.stream_usage = False  # a server that ignores stream_options
    completion, _ = complete(provider(fake_openai), "Hi there", stream=True)
    assert completion.text == "Echo: Hi there" and completion.finish_reason == "stop"
    assert completion.usage.input_tokens is None and completion.usage.output_tokens is None


def test_an_error_event_inside_the_stream_is_a_server_error(fake_openai):
    event = {"error": {"message": "upstream overloaded", "code": 502}}
    fake_openai.raw_response = Response(chunks=[sse(event)], content_type="text/event-stream")
    with pytest.raises(ServerError, match="upstream overloaded"):
        complete(provider(fake_openai), stream=True)


async def _lines(*lines):
    for line in lines:
        yield line


def _events(*lines):
    async def drain():
        return [event async for event in sse_data(_lines(*lines))]

    return asyncio.run(drain())


def test_sse_events_follow_the_spec():
    assert _events(
        ": a comment, then an event with two data lines",
        "event: message",
        "id: 7",
        'data: {"a":',
        "data: 1}",
        "",
        "",  # blank lines between events are not events
        "data:no space after the colon",
        "",
        "data: [DONE]",
        "",
        "data: after the end, read but not yielded",
        "",
    ) == ['{"a":\n1}', "no space after the colon"]


def test_the_last_event_counts_without_its_blank_line():
    assert _events('data: {"b": 2}') == ['{"b": 2}']


def test_a_chunk_whose_content_is_not_text_is_a_bad_response(fake_openai):
    chunk = {"id": "x", "model": "m", "choices": [{"index": 0, "delta": {"content": [1]}}]}
    fake_openai.raw_response = Response(chunks=[sse(chunk)], content_type="text/event-stream")
    with pytest.raises(BadResponse, match="not text"):
        complete(provider(fake_openai), stream=True)


def test_a_streamed_answer_reuses_its_connection(fake_openai):
    """The body is read past [DONE] to its end, as the SDK does: the next call reuses the
    connection instead of opening another."""
    chat = provider(fake_openai)

    async def twice():
        for _ in range(2):
            await collect(chat.stream((Message("user", "Hi"),), GenerationSettings()), True)
        await chat.aclose()

    asyncio.run(twice())
    assert len({r.peer for r in fake_openai.generation_requests()[-2:]}) == 1
