"""Fake Ollama server: /api/chat (NDJSON stream or one JSON object), /api/tags, /api/version.
Fields as in Ollama's API docs: message.content, done, done_reason, prompt_eval_count,
eval_count, and the durations in nanoseconds."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from .gemini import split_words
from .server import FakeServer, Request, Response


class FakeOllama(FakeServer):
    def __init__(self) -> None:
        super().__init__()
        self.models = {"llama3.1:latest", "llama3.2:latest"}
        self.prompt_eval_count = 26
        self.eval_count = 42
        self.load_duration_ns = 5_000_000
        self.prompt_eval_duration_ns = 20_000_000
        self.eval_duration_ns = 300_000_000

    def is_generation(self, request: Request) -> bool:
        return request.method == "POST" and request.path == "/api/chat"

    def route(self, request: Request) -> Response:
        if request.path == "/api/tags":
            return Response(body={"models": [_tag(name) for name in sorted(self.models)]})
        if request.path == "/api/version":
            return Response(body={"version": "0.12.6"})
        if request.path != "/api/chat":
            return Response(status=404, body=b"404 page not found", content_type="text/plain")
        body = request.body or {}
        model = body.get("model", "")
        name = model if ":" in model else f"{model}:latest"
        if name not in self.models:
            return self.error_response(404, f'model "{model}" not found, try pulling it first')
        text = self.reply(body["messages"][-1]["content"])
        if body.get("stream", True):
            lines = [self._part(model, piece, done=False) for piece in split_words(text)]
            lines.append(self._part(model, "", done=True))
            return Response(
                chunks=[(json.dumps(line) + "\n").encode() for line in lines],
                content_type="application/x-ndjson",
            )
        return Response(body=self._part(model, text, done=True))

    def _part(self, model: str, text: str, done: bool) -> dict:
        part = {
            "model": model,
            "created_at": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
            "message": {"role": "assistant", "content": text},
            "done": done,
        }
        if done:
            part.update(
                done_reason="stop",
                total_duration=self.load_duration_ns
                + self.prompt_eval_duration_ns
                + self.eval_duration_ns,
                load_duration=self.load_duration_ns,
                prompt_eval_count=self.prompt_eval_count,
                prompt_eval_duration=self.prompt_eval_duration_ns,
                eval_count=self.eval_count,
                eval_duration=self.eval_duration_ns,
            )
        return part

    def error_response(self, status: int, message: str) -> Response:
        return Response(status=status, body={"error": message})

    def malformed_response(self, request: Request) -> Response:
        return Response(
            chunks=[b'{"model": "x", "message": {"content": \n'],
            content_type="application/x-ndjson",
        )


def _tag(name: str) -> dict:
    return {
        "name": name,
        "model": name,
        "modified_at": "2026-10-01T10:00:00.000000Z",
        "size": 4920753328,
        "digest": "46e0c10c039e019119339687c3c1757cc81b9da49709a3b3924863ba87ca666e",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "8.0B",
            "quantization_level": "Q4_K_M",
        },
    }
