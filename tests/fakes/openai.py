"""Fake OpenAI-compatible server: /v1/chat/completions (JSON, or SSE chunks ending in
`data: [DONE]`, with a final usage chunk when stream_options.include_usage is set), /v1/models."""

from __future__ import annotations

import time
import uuid

from .gemini import split_words
from .openai_batch import OpenAIBatchEndpoints
from .server import FakeServer, Request, Response, sse


class FakeOpenAI(FakeServer):
    def __init__(self, api_key: str | None = "test-openai-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.prompt_tokens = 19
        self.completion_tokens = 25
        self.reasoning_tokens = 0
        self.cached_tokens = 0
        self.stream_usage = True  # False: ignore stream_options, as some compatible servers do
        # the answer to a request asking for structured output (`response_format`), as MLflow's
        # built-in judges send: a verdict in the JSON they ask for
        self.structured_reply = '{"result": "yes", "rationale": "The answer addresses it."}'
        self.batch = OpenAIBatchEndpoints(self._completion)  # /v1/files and /v1/batches

    def is_generation(self, request: Request) -> bool:
        return request.method == "POST" and request.path.endswith("/chat/completions")

    def route(self, request: Request) -> Response:
        if self.api_key and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Response(
                status=401,
                body={
                    "error": {
                        "message": "Incorrect API key provided.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            )
        if request.method == "GET" and request.path.endswith("/models"):
            return Response(
                body={
                    "object": "list",
                    "data": [
                        {
                            "id": "gpt-4o-mini",
                            "object": "model",
                            "created": 1721172741,
                            "owned_by": "system",
                        }
                    ],
                }
            )
        if self.batch.handles(request.path):
            return self.batch.route(request)
        if not self.is_generation(request):
            return self.error_response(404, f"Unknown path {request.path}")
        body = request.body or {}
        if not body.get("stream"):
            return Response(body=self._completion(body))
        model = body.get("model", "")
        text = self._text(body)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        include_usage = self.stream_usage and bool(
            (body.get("stream_options") or {}).get("include_usage")
        )

        def chunk(delta: dict, finish: str | None) -> dict:
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                payload["usage"] = None
            return payload

        chunks = [sse(chunk({"role": "assistant", "content": "", "refusal": None}, None))]
        chunks += [sse(chunk({"content": piece}, None)) for piece in split_words(text)]
        chunks.append(sse(chunk({}, "stop")))
        if include_usage:
            chunks.append(
                sse(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "system_fingerprint": "fp_fake",
                        "choices": [],
                        "usage": self._usage(),
                    }
                )
            )
        chunks.append(b"data: [DONE]\n\n")
        return Response(chunks=chunks, content_type="text/event-stream")

    def _text(self, body: dict) -> str:
        if body.get("response_format"):
            return self.structured_reply
        return self.reply(body["messages"][-1]["content"], body.get("model", ""))

    def _completion(self, body: dict) -> dict:
        """The chat completion (not streamed) answering one request body."""
        model = body.get("model", "")
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": self._text(body),
                        "refusal": None,
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": self._usage(),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def _usage(self) -> dict:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def error_response(self, status: int, message: str) -> Response:
        kind = {429: "rate_limit_exceeded", 500: "server_error"}.get(
            status, "invalid_request_error"
        )
        return Response(
            status=status,
            body={
                "error": {
                    "message": message,
                    "type": kind,
                    "param": None,
                    "code": kind,
                }
            },
        )

    def malformed_response(self, request: Request) -> Response:
        if (request.body or {}).get("stream"):
            return Response(
                chunks=[b'data: {"id": "x", "choices": [{\n\n'], content_type="text/event-stream"
            )
        return Response(body=b'{"id": "chatcmpl-x", "choices": [', content_type="application/json")
