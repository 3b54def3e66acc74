"""Fake Gemini API (generativelanguage v1 and v1beta): generateContent,
streamGenerateContent?alt=sse, models.get. Wire format as in Google's REST reference:
camelCase fields, usageMetadata with promptTokenCount / candidatesTokenCount /
thoughtsTokenCount / cachedContentTokenCount, errors as {"error": {code, message, status}}."""

from __future__ import annotations

import re
import uuid

from .gemini_batch import GeminiBatchEndpoints
from .server import FakeServer, Request, Response, sse

_PATH = re.compile(
    r"^/(?:v1|v1beta)/models/(?P<model>[^:/?]+)(?::(?P<method>\w+))?(?:\?(?P<query>.*))?$"
)


class FakeGemini(FakeServer):
    def __init__(self, api_key: str = "test-gemini-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.prompt_tokens = 12
        self.candidates_tokens = 30
        self.thoughts_tokens = 0
        self.cached_tokens = 0
        self.models = {"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash"}
        # Batch Mode: batches, and the files of their requests and results
        self.batch = GeminiBatchEndpoints(
            lambda model, request: self._response(model, self.reply(last_text(request)), True)
        )

    def is_generation(self, request: Request) -> bool:
        path = request.path
        return request.method == "POST" and (
            ":generateContent" in path or ":streamGenerateContent" in path
        )

    def route(self, request: Request) -> Response:
        resumed_upload = "upload_id=" in request.path  # the SDK sends no key with the bytes
        if self.batch.handles(request.path) and (self._key_ok(request) or resumed_upload):
            return self.batch.route(request, self.url)
        match = _PATH.match(request.path)
        if not match:
            return self.error_response(404, f"Method not found: {request.path}")
        if request.headers.get("x-goog-api-key") != self.api_key:
            return _error(
                400,
                "API key not valid. Please pass a valid API key.",
                "INVALID_ARGUMENT",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    }
                ],
            )
        model, method = match["model"], match["method"]
        if model not in self.models:
            return _error(404, f"models/{model} is not found for API version v1beta", "NOT_FOUND")
        if method is None and request.method == "GET":
            return Response(body=_model_info(model))
        text = self.reply(last_text(request.body))
        if method == "generateContent":
            return Response(body=self._response(model, text, final=True))
        if method == "streamGenerateContent":
            pieces = split_words(text)
            chunks = [
                sse(self._response(model, piece, final=i == len(pieces) - 1))
                for i, piece in enumerate(pieces)
            ]
            return Response(chunks=chunks, content_type="text/event-stream")
        return self.error_response(404, f"Method not found: {method}")

    def _key_ok(self, request: Request) -> bool:
        return request.headers.get("x-goog-api-key") == self.api_key

    def _response(self, model: str, text: str, final: bool) -> dict:
        candidate: dict = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
        usage: dict = {
            "promptTokenCount": self.prompt_tokens,
            "totalTokenCount": self.prompt_tokens,
        }
        if final:
            candidate["finishReason"] = "STOP"
            usage = {
                "promptTokenCount": self.prompt_tokens,
                "candidatesTokenCount": self.candidates_tokens,
                "totalTokenCount": self.prompt_tokens
                + self.candidates_tokens
                + self.thoughts_tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": self.prompt_tokens}],
            }
            if self.thoughts_tokens:
                usage["thoughtsTokenCount"] = self.thoughts_tokens
            if self.cached_tokens:
                usage["cachedContentTokenCount"] = self.cached_tokens
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": uuid.uuid4().hex[:22],
        }

    def error_response(self, status: int, message: str) -> Response:
        names = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 404: "NOT_FOUND"}
        return _error(status, message, names.get(status, "UNKNOWN"))

    def malformed_response(self, request: Request) -> Response:
        if "streamGenerateContent" in request.path:
            return Response(
                chunks=[b'data: {"candidates": [{"content": \n\n'], content_type="text/event-stream"
            )
        return Response(body=b'{"candidates": [', content_type="application/json")


def _error(status: int, message: str, name: str, details: list[dict] | None = None) -> Response:
    error = {"code": status, "message": message, "status": name}
    if details:
        error["details"] = details
    return Response(status=status, body={"error": error})


def _model_info(model: str) -> dict:
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": model,
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    }


def last_text(body: dict) -> str:
    """The last user message, which the fake's deterministic answer is derived from."""
    contents = body.get("contents") or []
    return contents[-1]["parts"][0]["text"] if contents else ""


def split_words(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
