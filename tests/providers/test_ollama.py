import asyncio

import pytest

from llmflow.errors import BadResponse, ModelNotFound, ProviderUnavailable, RateLimited, ServerError
from llmflow.providers.ollama import OllamaProvider
from tests.fakes.server import Response
from tests.helpers import complete


def provider(fake, model="llama3.1"):
    return OllamaProvider(model, base_url=fake.url, timeout_s=5)


@pytest.mark.parametrize("stream", [True, False])
def test_usage_and_durations(fake_ollama, stream):
    completion, timing = complete(provider(fake_ollama), "Why is the sky blue?", stream=stream)
    usage = completion.usage
    assert completion.text == "Echo: Why is the sky blue?"
    assert (usage.input_tokens, usage.output_tokens) == (26, 42)
    assert usage.details["load_duration"] == 5_000_000
    assert usage.details["eval_duration"] == 300_000_000
    assert completion.finish_reason == "stop"
    assert (timing.ttft_s is not None) is stream
    assert fake_ollama.generation_requests()[-1].body["stream"] is stream


def test_settings_are_sent_as_options(fake_ollama):
    complete(provider(fake_ollama), temperature=0.6, max_tokens=32, seed=3, stop=("\n",))
    body = fake_ollama.generation_requests()[-1].body
    assert body["options"] == {"temperature": 0.6, "num_predict": 32, "seed": 3, "stop": ["\n"]}


@pytest.mark.parametrize(
    ("fault", "error"), [("429", RateLimited), ("500", ServerError), ("malformed", BadResponse)]
)
def test_faults_are_translated(fake_ollama, fault, error):
    fake_ollama.inject(fault)
    with pytest.raises(error):
        complete(provider(fake_ollama))


def test_model_not_pulled_says_how_to_fix(fake_ollama):
    with pytest.raises(ModelNotFound, match="ollama pull mistral"):
        asyncio.run(provider(fake_ollama, "mistral").check())
    asyncio.run(provider(fake_ollama, "llama3.1").check())


def test_server_down_is_unavailable():
    down = OllamaProvider("llama3.1", base_url="http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(ProviderUnavailable, match="ollama serve"):
        asyncio.run(down.check())


def test_a_stream_cut_off_before_done_fails(fake_ollama):
    fake_ollama.truncate_stream = True
    with pytest.raises(BadResponse, match="cut off"):
        complete(provider(fake_ollama), "one two three four", stream=True)


def test_an_error_line_inside_the_stream_is_a_server_error(fake_ollama):
    line = b'{"error": "llama runner process has terminated"}\n'
    fake_ollama.raw_response = Response(chunks=[line], content_type="application/x-ndjson")
    with pytest.raises(ServerError, match="runner process has terminated"):
        complete(provider(fake_ollama), stream=True)
