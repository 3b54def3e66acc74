"""Fake Anthropic Messages API: POST /v1/messages (a JSON message, or with "stream": true the
server-sent events message_start, content_block_start, ping, content_block_delta,
content_block_stop, message_delta, message_stop, and error), GET /v1/models/{id}.

Wire format as in Anthropic's API reference and the anthropic SDK's types: errors as
{"type": "error", "error": {"type", "message"}, "request_id"}, usage with input_tokens that
leave out cache_read_input_tokens and cache_creation_input_tokens, cumulative usage on
message_delta, thinking tokens in output_tokens_details. The answer stops at max_tokens words
(stop_reason max_tokens) or at a stop sequence (stop_reason stop_sequence), as the API does.
"""

from __future__ import annotations

import json
import uuid

from .gemini import split_words
from .server import FakeServer, Request, Response

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropic(FakeServer):
    def __init__(self, api_key: str = "test-anthropic-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.models = {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"}
        self.input_tokens = 21  # uncached: Anthropic's input_tokens leaves the cache's out
        self.output_tokens = 33
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.cache_write_1h_tokens = 0  # the part of cache_write_tokens kept for an hour
        self.thinking_tokens = 0  # > 0: a thinking block comes before the answer
        # False: message_delta carries output_tokens only, as older API versions sent it
        self.delta_has_input_usage = True
        self.stream_error: str | None = None  # an error event of this type after the first text

    def is_generation(self, request: Request) -> bool:
        return request.method == "POST" and request.path == "/v1/messages"

    def route(self, request: Request) -> Response:
        # the key as an x-api-key header, or a bearer token as the SDK sends it since 2.x
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if self.api_key not in (request.headers.get("x-api-key"), bearer):
            return self.error_response(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self.error_response(400, "anthropic-version: header is required")
        if request.method == "GET" and request.path.startswith("/v1/models/"):
            model = request.path.removeprefix("/v1/models/")
            if model not in self.models:
                return self.error_response(404, f"model: {model}")
            return Response(body=_model_info(model))
        if not self.is_generation(request):
            return self.error_response(404, "Not found")
        body = request.body if isinstance(request.body, dict) else {}
        if problem := _invalid(body):
            return self.error_response(400, problem)
        if body["model"] not in self.models:
            return self.error_response(404, f"model: {body['model']}")
        text, stop_reason, stop_sequence = self._answer(body)
        # the API counts every token it generated: all max_tokens of them when it stopped there
        output = body["max_tokens"] if stop_reason == "max_tokens" else self.output_tokens
        message = self._message(body["model"], stop_reason, stop_sequence)
        if body.get("stream"):
            chunks = self._events(message, text, self._output_usage(output))
            return Response(chunks=chunks, content_type="text/event-stream")
        message["content"] = self._thinking_block() + [{"type": "text", "text": text}]
        message["usage"] = {**self._input_usage(), **self._output_usage(output)}
        return Response(body=message)

    def _answer(self, body: dict) -> tuple[str, str, str | None]:
        """The reply, cut as the API cuts it: at a stop sequence, or at max_tokens words."""
        text = self.reply(_last_text(body["messages"]))
        for sequence in body.get("stop_sequences") or ():
            if sequence in text:
                return text.partition(sequence)[0], "stop_sequence", sequence
        words = split_words(text)
        if len(words) > body["max_tokens"]:
            return "".join(words[: body["max_tokens"]]), "max_tokens", None
        return text, "end_turn", None

    def _message(self, model: str, stop_reason: str | None, stop_sequence: str | None) -> dict:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
        }

    def _input_usage(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write_tokens,
            "cache_read_input_tokens": self.cache_read_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": self.cache_write_tokens - self.cache_write_1h_tokens,
                "ephemeral_1h_input_tokens": self.cache_write_1h_tokens,
            },
            "service_tier": "standard",
        }

    def _output_usage(self, output: int) -> dict:
        usage: dict = {"output_tokens": output}
        if self.thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": self.thinking_tokens}
        return usage

    def _thinking_block(self) -> list[dict]:
        if not self.thinking_tokens:
            return []
        return [{"type": "thinking", "thinking": "Let me think.", "signature": "EqQBCkYIBxgC"}]

    def _events(self, message: dict, text: str, usage: dict) -> list[bytes]:
        """The stream of one answer: `message` is the final one, without content or usage."""
        started = {**message, "stop_reason": None, "stop_sequence": None}
        started["usage"] = {**self._input_usage(), "output_tokens": 1}
        events = [_event({"type": "message_start", "message": started})]
        index = 0
        if self.thinking_tokens:
            events += _block(0, {"type": "thinking", "thinking": "", "signature": ""}, [
                {"type": "thinking_delta", "thinking": "Let me think."},
                {"type": "signature_delta", "signature": "EqQBCkYIBxgC"},
            ])  # fmt: skip
            index = 1
        pieces = [{"type": "text_delta", "text": piece} for piece in split_words(text)]
        text_block = _block(index, {"type": "text", "text": ""}, pieces)
        if self.stream_error:
            error = {"type": self.stream_error, "message": "Overloaded"}
            return [*events, *text_block[:4], _event({"type": "error", "error": error})]
        if self.delta_has_input_usage:
            usage = {k: v for k, v in self._input_usage().items() if k.endswith("tokens")} | usage
        delta = {k: message[k] for k in ("stop_reason", "stop_sequence")}
        return [
            *events,
            *text_block,
            _event({"type": "message_delta", "delta": delta, "usage": usage}),
            _event({"type": "message_stop"}),
        ]

    def error_response(self, status: int, message: str) -> Response:
        error = {"type": _ERROR_TYPES.get(status, "api_error"), "message": message}
        request_id = f"req_{uuid.uuid4().hex[:24]}"
        return Response(
            status=status,
            body={"type": "error", "error": error, "request_id": request_id},
            headers={"request-id": request_id},
        )

    def malformed_response(self, request: Request) -> Response:
        if (request.body or {}).get("stream"):
            return Response(
                chunks=[b'event: message_start\ndata: {"type": "message_start", "message": {\n\n'],
                content_type="text/event-stream",
            )
        return Response(body=b'{"id": "msg_x", "type": "message", "content": [', status=200)


def _invalid(body: dict) -> str | None:
    """What the API answers 400 for, of what llmflow could send wrong."""
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    if "seed" in body:
        return "seed: Extra inputs are not permitted"
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: Input should be less than or equal to 1"
    if any(m.get("role") not in ("user", "assistant") for m in body.get("messages") or []):
        return (
            'messages: Unexpected role "system". The Messages API accepts a top-level `system` '
            'parameter, not "system" as an input message role.'
        )
    return None


def _last_text(messages: list[dict]) -> str:
    content = messages[-1]["content"] if messages else ""
    if isinstance(content, list):  # content blocks
        return "".join(block.get("text", "") for block in content)
    return content


def _block(index: int, start: dict, deltas: list[dict]) -> list[bytes]:
    return [
        _event({"type": "content_block_start", "index": index, "content_block": start}),
        _event({"type": "ping"}),
        *[_event({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas],
        _event({"type": "content_block_stop", "index": index}),
    ]


def _event(payload: dict) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()


def _model_info(model: str) -> dict:
    return {
        "type": "model",
        "id": model,
        "display_name": model.replace("-", " ").title(),
        "created_at": "2025-09-29T00:00:00Z",
    }
