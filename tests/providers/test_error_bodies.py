"""An HTTP error body of any shape becomes our error, with the status and a short excerpt.

Servers, proxies and "compatible" endpoints answer errors with JSON of any shape, HTML, plain
text, nothing, or a body cut short. Translating one must never raise, or one bad answer (even
to the model check at start) would stop the whole run instead of one call or one variant.
"""

import asyncio

import pytest

from llmflow.errors import BadResponse, ModelNotFound, ProviderError, ServerError
from llmflow.providers.anthropic import AnthropicProvider
from llmflow.providers.base import excerpt
from llmflow.providers.gemini import GeminiProvider
from llmflow.providers.ollama import OllamaProvider
from llmflow.providers.openai_compat import OpenAICompatProvider
from tests.fakes.server import Response
from tests.helpers import complete

LONG = b"<html><body>" + b"proxy error " * 500 + b"</body></html>"

# name: (body, content type, a piece of it the message must show, or None)
BODIES = {
    "plain text": (b"upstream not found", "text/plain", "upstream not found"),
    "html": (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html", "Bad Gateway"),
    "empty": (b"", "application/json", None),
    "cut short": (b'{"error": {"message": "quota exc', "application/json", "quota exc"),
    "error is a string": (b'{"error": "not found"}', "application/json", "not found"),
    "empty list": (b"[]", "application/json", "[]"),
    "error without message": (b'{"error": {"details": "x"}}', "application/json", "details"),
    "json string": (b'"overloaded"', "application/json", "overloaded"),
    "json null": (b"null", "application/json", None),
    "long html": (LONG, "text/html", "proxy error"),
    "secret in a url": (
        b"see http://user:PASS@10.0.0.1/x?key=SECRET for more",
        "text/plain",
        "10.0.0.1",
    ),
}
STATUSES = {404: ModelNotFound, 503: ServerError}


def gemini(fake):
    return GeminiProvider("gemini-2.5-flash", api_key="test-gemini-key", base_url=fake.url)


def ollama(fake):
    return OllamaProvider("llama3.1", base_url=fake.url)


def openai(fake):
    return OpenAICompatProvider("gpt-4o-mini", api_key="test-openai-key", base_url=f"{fake.url}/v1")


PROVIDERS = {"gemini": (gemini, "fake_gemini"), "ollama": (ollama, "fake_ollama")}
PROVIDERS["openai"] = (openai, "fake_openai")


def anthropic(fake):
    return AnthropicProvider("claude-sonnet-4-5", api_key="test-anthropic-key", base_url=fake.url)


PROVIDERS["anthropic"] = (anthropic, "fake_anthropic")


def check(provider) -> None:
    async def go() -> None:
        try:
            await provider.check()
        finally:
            await provider.aclose()

    asyncio.run(go())


def outcome(provider, mode: str) -> ProviderError | None:
    """The ProviderError a call (or the model check) ends with; any other exception fails."""
    try:
        if mode == "check":
            check(provider)
        else:
            complete(provider, stream=mode == "stream")
    except ProviderError as e:
        return e
    return None


def expected_error(name: str, shape: str, status: int) -> type[ProviderError]:
    if name == "gemini" and shape == "cut short":
        # google-genai's aiohttp path parses a JSON error body without catching the decode
        # error: the status is lost before we see it, the body is not
        return BadResponse
    return STATUSES[status]


@pytest.mark.parametrize("status", sorted(STATUSES))
@pytest.mark.parametrize("shape", sorted(BODIES))
@pytest.mark.parametrize("mode", ["stream", "plain", "check"])
@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_any_error_body_becomes_our_error(request, name, mode, shape, status):
    build, fixture = PROVIDERS[name]
    fake = request.getfixturevalue(fixture)
    body, content_type, shown = BODIES[shape]
    fake.raw_response = Response(status=status, body=body, content_type=content_type)
    error = outcome(build(fake), mode)
    if error is None:
        # many compatible servers lack /models, so only a connection or key error fails it;
        # a gateway to Anthropic may lack its models route: a 404 not in Anthropic's words
        lenient = (name, mode) == ("openai", "check") or (name, mode, status) == (
            "anthropic",
            "check",
            404,
        )
        assert lenient, "an error status must fail the call"
        return
    wanted = expected_error(name, shape, status)
    assert type(error) is wanted, str(error)
    assert error.status_code == (status if wanted is STATUSES[status] else None)
    message = str(error)
    assert "\n" not in message and len(message) < 320, message
    if shown is not None:
        assert shown in message
    assert "PASS" not in message and "SECRET" not in message


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_check_survives_a_200_that_is_not_a_model_answer(request, name):
    build, fixture = PROVIDERS[name]
    fake = request.getfixturevalue(fixture)
    fake.raw_response = Response(body=b"<html>a web UI</html>", content_type="text/html")
    outcome(build(fake), "check")  # ProviderError skips the variant; anything else stops the run


def test_ollama_unreachable_host_does_not_show_its_password():
    down = OllamaProvider("llama3.1", base_url="http://user:PASS@127.0.0.1:9", timeout_s=2)
    with pytest.raises(ProviderError) as info:
        check(down)
    assert "PASS" not in str(info.value) and "127.0.0.1:9" in str(info.value)


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (None, "(empty body)"),
        (b"  \n", "(empty body)"),
        (b"\xff\xfe bytes", "\ufffd\ufffd bytes"),
        ({"error": {"message": "x"}}, '{"error": {"message": "x"}}'),
        ([1, "two"], '[1, "two"]'),
        ("line one\n  line two", "line one line two"),
        ("https://h/p?api_key=SECRET&a=b", "https://h/p?api_key=***&a=b"),
    ],
)
def test_excerpt_never_raises(body, shown):
    assert excerpt(body) == shown


def test_excerpt_is_cut_after_redaction():
    text = excerpt("x" * 190 + " http://u:PASS@host/ " + "y" * 100)
    assert len(text) == 200 and text.endswith("...") and "PASS" not in text


def test_excerpt_of_a_circular_structure():
    loop: list = []
    loop.append(loop)
    assert excerpt(loop) == "[[...]]"


DELTA_MAKERS = {
    "gemini": "llmflow.providers.gemini._delta",
    "ollama": "llmflow.providers.ollama._delta",
    "openai": "llmflow.providers.openai_compat._chunk_delta",
}


@pytest.mark.parametrize("name", sorted(DELTA_MAKERS))
def test_a_bug_in_the_adapter_surfaces_as_itself(name: str, request, monkeypatch):
    """Only the SDK's, the HTTP library's and the network's errors are translated: a KeyError of
    llmflow's own is not read as the provider's "unreadable response" (and retried 1,000
    times over a run)."""

    def broken(*args, **kwargs):
        raise KeyError("a bug of ours")

    build, fixture = PROVIDERS[name]
    fake = request.getfixturevalue(fixture)
    fake.raw_response = None  # fetched by name, the module's fake is not reset for this test
    monkeypatch.setattr(DELTA_MAKERS[name], broken)
    with pytest.raises(KeyError, match="a bug of ours"):
        complete(build(fake), stream=True)
