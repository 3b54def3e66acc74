"""The anthropic provider: the real anthropic SDK against the fake Messages API."""

import asyncio

import pytest

from llmflow.errors import (
    AuthenticationError,
    BadRequest,
    BadResponse,
    ModelNotFound,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ServerError,
    StreamCutOff,
)
from llmflow.providers import create_provider
from llmflow.providers.anthropic import AnthropicProvider
from llmflow.providers.base import collect
from llmflow.types import GenerationSettings, Message
from tests.fakes.server import Response
from tests.helpers import complete


def provider(fake, model="claude-sonnet-4-5", key="test-anthropic-key", timeout_s=5.0):
    return AnthropicProvider(model, api_key=key, base_url=fake.url, timeout_s=timeout_s)


@pytest.mark.parametrize("stream", [True, False])
def test_usage_counts_the_cache_into_input_and_thinking_into_output(fake_anthropic, stream):
    fake = fake_anthropic
    fake.input_tokens, fake.output_tokens, fake.thinking_tokens = 21, 33, 8
    fake.cache_read_tokens, fake.cache_write_tokens, fake.cache_write_1h_tokens = 500, 300, 100
    completion, timing = complete(provider(fake), "What is MLflow?", stream=stream)
    usage = completion.usage
    assert completion.text == "Echo: What is MLflow?"  # the thinking block is not the answer
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (821, 33, 854)
    assert (usage.cached_input_tokens, usage.cache_write_input_tokens) == (500, 300)
    assert (usage.cache_write_1h_input_tokens, usage.reasoning_tokens) == (100, 8)
    assert usage.details == {"service_tier": "standard"}
    assert (completion.finish_reason, completion.model_version) == ("end_turn", "claude-sonnet-4-5")
    assert (timing.ttft_s is not None) is stream


def test_input_counts_of_message_start_stand_when_message_delta_omits_them(fake_anthropic):
    fake_anthropic.delta_has_input_usage = False
    fake_anthropic.cache_read_tokens = 4
    completion, _ = complete(provider(fake_anthropic), stream=True)
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (25, 33)
    assert completion.usage.cached_input_tokens == 4


def test_system_goes_in_the_system_field_and_settings_are_sent(fake_anthropic):
    complete(
        provider(fake_anthropic),
        "Hi",
        system="Be brief",
        temperature=0.2,
        top_p=0.9,
        stop=("END",),
        max_tokens=64,
    )
    request = fake_anthropic.generation_requests()[-1]
    body = request.body
    assert body["system"] == "Be brief"
    assert body["messages"] == [{"role": "user", "content": "Hi"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 64)
    assert body["stop_sequences"] == ["END"] and body["stream"] is True
    assert "seed" not in body
    assert request.headers["authorization"] == "Bearer test-anthropic-key"
    assert request.headers["anthropic-version"]


def test_max_tokens_is_always_sent_and_unset_settings_are_not(fake_anthropic):
    complete(provider(fake_anthropic))
    body = fake_anthropic.generation_requests()[-1].body
    assert body["max_tokens"] == 4096
    assert not {"temperature", "top_p", "stop_sequences", "system"} & set(body)


def test_a_seed_is_refused_before_anything_is_sent(fake_anthropic):
    with pytest.raises(BadRequest, match="takes no seed"):
        complete(provider(fake_anthropic), seed=7)
    assert fake_anthropic.generation_requests() == []


@pytest.mark.parametrize("stream", [True, False])
def test_stopping_at_max_tokens_is_an_answer_marked_so(fake_anthropic, stream):
    completion, _ = complete(
        provider(fake_anthropic), "one two three four five", max_tokens=3, stream=stream
    )
    assert completion.text == "Echo: one two "
    assert completion.finish_reason == "max_tokens"
    assert completion.usage.output_tokens == 3


def test_a_stop_sequence_ends_the_answer(fake_anthropic):
    completion, _ = complete(provider(fake_anthropic), "alpha STOP beta", stop=("STOP",))
    assert completion.text == "Echo: alpha " and completion.finish_reason == "stop_sequence"


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("429", RateLimited, 429),
        ("529", ServerError, 529),
        ("500", ServerError, 500),
        ("malformed", BadResponse, None),
        ("drop", ProviderUnavailable, None),
    ],
)
@pytest.mark.parametrize("stream", [True, False])
def test_faults_are_translated_without_sdk_retries(fake_anthropic, fault, error, status, stream):
    fake_anthropic.inject(fault)
    with pytest.raises(error) as info:
        complete(provider(fake_anthropic), stream=stream)
    assert type(info.value) is error and info.value.status_code == status
    assert len(fake_anthropic.generation_requests()) == 1, "max_retries=0: the runner retries"


def test_overloaded_names_its_error_type(fake_anthropic):
    fake_anthropic.inject("529")
    with pytest.raises(ServerError, match="anthropic 529: overloaded_error: Overloaded"):
        complete(provider(fake_anthropic))


def test_rate_limit_carries_retry_after(fake_anthropic):
    fake_anthropic.retry_after_s = 7
    fake_anthropic.inject("429")
    with pytest.raises(RateLimited) as info:
        complete(provider(fake_anthropic))
    assert info.value.retry_after == 7 and "rate_limit_error" in str(info.value)


def test_timeout(fake_anthropic):
    fake_anthropic.hang_s = 1.0
    fake_anthropic.inject("timeout")
    with pytest.raises(ProviderTimeout):
        complete(provider(fake_anthropic, timeout_s=0.2))


@pytest.mark.parametrize("kind", ["overloaded_error", "api_error", "an_error_added_later"])
def test_an_error_event_inside_the_stream_fails_the_call(fake_anthropic, kind):
    fake_anthropic.stream_error = kind
    with pytest.raises(ServerError, match=f"error during the answer: {kind}: Overloaded"):
        complete(provider(fake_anthropic), "one two three", stream=True)


def test_a_rate_limit_error_event_is_rate_limited(fake_anthropic):
    fake_anthropic.stream_error = "rate_limit_error"
    with pytest.raises(RateLimited):
        complete(provider(fake_anthropic), stream=True)


def test_a_stream_cut_before_message_stop_fails(fake_anthropic):
    fake_anthropic.truncate_stream = True
    with pytest.raises(StreamCutOff, match="anthropic: the stream was cut off.*message_stop"):
        complete(provider(fake_anthropic), "one two three four", stream=True)


def test_a_stream_cut_after_its_usage_still_fails(fake_anthropic):
    """message_delta has the final usage, but only message_stop says the answer is done."""
    fake_anthropic.raw_response = _stream_of(
        b'data: {"type": "message_start", "message": {"usage": {"input_tokens": 1}}}\n\n',
        b'data: {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, '
        b'"usage": {"output_tokens": 2}}\n\n',
    )
    with pytest.raises(StreamCutOff):
        complete(provider(fake_anthropic), stream=True)


def test_a_connection_lost_mid_answer_is_unavailable(fake_anthropic):
    fake_anthropic.truncate_stream, fake_anthropic.stream_end = True, "drop"
    with pytest.raises(ProviderUnavailable, match="connection lost"):
        complete(provider(fake_anthropic), "one two three four", stream=True)


@pytest.mark.parametrize("end", ["drop", "hang"])
def test_what_follows_message_stop_cannot_undo_a_finished_answer(fake_anthropic, end):
    fake_anthropic.stream_end, fake_anthropic.hang_s = end, 3.0
    completion, timing = complete(provider(fake_anthropic), "Hi there", stream=True)
    assert completion.text == "Echo: Hi there" and completion.finish_reason == "end_turn"
    assert timing.latency_s < 1.0, "the rest of the body is read for 0.1 s at most"


def test_a_streamed_answer_reuses_its_connection(fake_anthropic):
    chat = provider(fake_anthropic)

    async def twice():
        for _ in range(2):
            await collect(chat.stream((Message("user", "Hi"),), GenerationSettings()), True)
        await chat.aclose()

    asyncio.run(twice())
    assert len({r.peer for r in fake_anthropic.generation_requests()[-2:]}) == 1


def _stream_of(*events: bytes) -> Response:
    return Response(chunks=list(events), content_type="text/event-stream")


@pytest.mark.parametrize(
    "event",
    [
        b'data: {"type": "content_block_delta", "delta": {"type": "text_delta", "text": [1]}}',
        b'data: {"type": "message_start", "message": "not a message"}',
        b'data: {"type": "message_delta", "delta": {}, "usage": {"output_tokens": "many"}}',
        b"data: [1, 2]",
        b"data: not json",
    ],
)
def test_an_unreadable_event_is_a_bad_response_not_a_crash(fake_anthropic, event):
    start = b'data: {"type": "message_start", "message": {"usage": {"input_tokens": 1}}}\n\n'
    stop = b'data: {"type": "message_stop"}\n\n'
    fake_anthropic.raw_response = _stream_of(start, event + b"\n\n", stop)
    with pytest.raises(BadResponse):
        complete(provider(fake_anthropic), stream=True)


def test_a_message_without_content_is_a_bad_response(fake_anthropic):
    fake_anthropic.raw_response = Response(body={"type": "message", "content": "text"})
    with pytest.raises(BadResponse, match="without content"):
        complete(provider(fake_anthropic), stream=False)


def test_unknown_events_and_blocks_are_skipped(fake_anthropic):
    fake_anthropic.raw_response = _stream_of(
        b'data: {"type": "message_start", "message": {"usage": {"input_tokens": 2}}}\n\n',
        b'data: {"type": "content_block_start", "index": 0, '
        b'"content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}}\n\n',
        b'data: {"type": "content_block_delta", "index": 0, '
        b'"delta": {"type": "input_json_delta", "partial_json": "{}"}}\n\n',
        b'data: {"type": "a_new_event"}\n\n',
        b'data: {"type": "content_block_start", "index": 1, '
        b'"content_block": {"type": "text", "text": "Hello"}}\n\n',
        b'data: {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, '
        b'"usage": {"output_tokens": 5}}\n\n',
        b'data: {"type": "message_stop"}\n\n',
    )
    completion, _ = complete(provider(fake_anthropic), stream=True)
    assert completion.text == "Hello" and completion.finish_reason == "tool_use"
    assert (completion.usage.input_tokens, completion.usage.output_tokens) == (2, 5)


def test_check_knows_the_key_and_the_model(fake_anthropic):
    with pytest.raises(AuthenticationError, match="anthropic 401: authentication_error"):
        asyncio.run(provider(fake_anthropic, key="wrong").check())
    with pytest.raises(ModelNotFound, match="claude-9"):
        asyncio.run(provider(fake_anthropic, model="claude-9").check())
    asyncio.run(provider(fake_anthropic).check())


def test_check_passes_a_gateway_without_the_models_route(fake_anthropic):
    fake_anthropic.raw_response = Response(status=404, body=b"Not Found", content_type="text/plain")
    asyncio.run(provider(fake_anthropic).check())


def test_the_spec_builds_it_with_the_key_and_url(fake_anthropic):
    built = create_provider(
        "anthropic", model="claude-haiku-4-5", api_key="test-anthropic-key", base_url=None
    )
    assert isinstance(built, AnthropicProvider) and built.model == "claude-haiku-4-5"
    asyncio.run(built.aclose())


@pytest.mark.parametrize("stream", [True, False])
def test_a_body_the_http_library_cannot_decode_is_a_bad_response(fake_anthropic, stream):
    fake_anthropic.raw_response = Response(
        body=b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(BadResponse, match="DecodingError"):
        complete(provider(fake_anthropic), stream=stream)


def test_a_bug_in_the_adapter_surfaces_as_itself(fake_anthropic, monkeypatch):
    """Only the SDK's and the HTTP library's errors are translated: a KeyError of ours is not
    dressed up as the provider's failure (and retried)."""

    def broken(self, kind, event):
        raise KeyError("a bug")

    monkeypatch.setattr("llmflow.providers.anthropic._Stream.take", broken)
    with pytest.raises(KeyError, match="a bug"):
        complete(provider(fake_anthropic), stream=True)
