import asyncio
import json

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


async def _chunks(*chunks):
    for chunk in chunks:
        yield chunk


def _events(*chunks: bytes) -> list[str]:
    async def drain():
        return [event async for event in sse_data(_chunks(*chunks))]

    return asyncio.run(drain())


def test_sse_events_follow_the_spec():
    body = (
        b": a comment, then an event with two data lines\r\n"
        b"event: message\r\nid: 7\r\n"
        b'data: {"a":\r\ndata: 1}\r\n\r\n'
        b"\n"  # a blank line without data dispatches nothing
        b"data:\n\n"  # nor does empty data (a keep-alive)
        b"data:no space after the colon\r\r"  # CR alone ends a line too
        b"data: [DONE]\n\n"
        b"data: after the end, read but not yielded\n\n"
    )
    # split anywhere, a CRLF across two chunks included
    assert _events(*[body[i : i + 7] for i in range(0, len(body), 7)]) == [
        '{"a":\n1}',
        "no space after the colon",
    ]


def test_only_cr_and_lf_end_a_line():
    """U+2028 and U+0085 may stand unescaped in a JSON string (str.splitlines splits there)."""
    event = json.dumps({"text": "a\u2028b\u0085c"}, ensure_ascii=False)
    assert _events(f"data: {event}\n\n".encode()) == [event]


def test_an_event_the_body_ends_in_is_discarded():
    assert _events(b'data: {"b": 1}\n\ndata: {"b": 2}') == ['{"b": 1}']
    assert _events(b'data: {"b": 1}\n\ndata: {"b": 2}\n') == ['{"b": 1}']


def test_a_connection_lost_mid_answer_is_unavailable(fake_openai):
    answer = [sse(_chunk("Hi"))]
    fake_openai.raw_response = Response(chunks=answer, content_type="text/event-stream")
    fake_openai.stream_end = "drop"
    with pytest.raises(ProviderUnavailable, match="connection lost"):
        complete(provider(fake_openai), stream=True)


@pytest.mark.parametrize("end", ["drop", "hang"])
def test_what_follows_done_cannot_undo_a_finished_answer(fake_openai, end):
    fake_openai.stream_end, fake_openai.hang_s = end, 3.0
    completion, timing = complete(provider(fake_openai), "Hi there", stream=True)
    assert completion.text == "Echo: Hi there" and completion.finish_reason == "stop"
    assert timing.latency_s < 1.0, "the rest of the body is read for 0.1 s at most"


def _chunk(content) -> dict:
    return {"id": "x", "model": "m", "choices": [{"index": 0, "delta": {"content": content}}]}


def test_a_chunk_whose_content_is_not_text_is_a_bad_response(fake_openai):
    fake_openai.raw_response = Response(chunks=[sse(_chunk([1]))], content_type="text/event-stream")
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
