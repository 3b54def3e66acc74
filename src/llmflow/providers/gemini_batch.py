"""Gemini's Batch Mode through google-genai: `client.aio.batches.create(model, src=...)` with
the requests inline (under 20 MB) or, past that, in a JSONL file uploaded first; results
inline, or in a results file keyed by `key`. Jobs expire after 48 h."""

from __future__ import annotations

import io
import json
from typing import Any

from google.genai import types as gt

from ..types import GenerationSettings, Message
from .base import excerpt
from .batch_api import Answer, JobState
from .gemini import _SDK_ERRORS, _delta, _translate, request_parts

ENDED = frozenset(
    {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
)
INLINE_BYTES = 19 * 1024 * 1024  # inline requests must stay under 20 MB: a file beyond


class GeminiBatch:
    provider = "gemini"
    max_requests = 100_000
    max_bytes = 1_900 * 1024 * 1024  # an uploaded file may hold 2 GB

    def __init__(self, client: Any, model: str) -> None:
        self._client = client
        self.model = model

    @classmethod
    def of(cls, provider: Any) -> GeminiBatch:
        """The batch API beside an opened GeminiProvider: its client, key and base URL."""
        return cls(provider._client, provider.model)

    def request(
        self, key: str, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> bytes:
        contents, config = request_parts(messages, settings)
        request = {
            "contents": [c.model_dump(mode="json", exclude_none=True) for c in contents],
            "config": config.model_dump(mode="json", exclude_none=True),
        }
        return json.dumps({"key": key, "request": request}, ensure_ascii=False).encode() + b"\n"

    async def submit(self, requests: list[bytes], label: str) -> str:
        batches = self._client.aio.batches
        config = {"display_name": label}
        try:
            if sum(len(r) for r in requests) < INLINE_BYTES:
                src: Any = [_inline(json.loads(r)) for r in requests]
            else:
                src = await self._upload(requests, label)
            job = await batches.create(model=self.model, src=src, config=config)
        except _SDK_ERRORS as e:
            raise _translate(e) from e
        return job.name

    async def _upload(self, requests: list[bytes], label: str) -> str:
        """The requests as a JSONL file in the file API's form (camelCase REST bodies)."""
        lines = [_file_line(json.loads(r)) for r in requests]
        data = io.BytesIO("".join(lines).encode())
        config = {"display_name": label, "mime_type": "application/jsonl"}
        uploaded = await self._client.aio.files.upload(file=data, config=config)
        return uploaded.name

    async def find(self, label: str) -> str | None:
        try:
            async for job in await self._client.aio.batches.list(config={"page_size": 100}):
                if job.display_name == label:
                    return job.name
        except _SDK_ERRORS as e:
            raise _translate(e) from e
        return None

    async def state(self, job_id: str) -> JobState:
        try:
            job = await self._client.aio.batches.get(name=job_id)
        except _SDK_ERRORS as e:
            raise _translate(e) from e
        state = job.state.value if job.state else "JOB_STATE_UNSPECIFIED"
        failure = None
        if state == "JOB_STATE_FAILED":
            failure = (job.error.message if job.error else None) or await self._error_of(job_id)
        return JobState(state=state, ended=state in ENDED, failure=failure)

    async def _error_of(self, job_id: str) -> str:
        """Why a job failed: the operation's `error`, which google-genai's BatchJob leaves out
        on the Gemini API (it maps `error` on Vertex only), read from the raw operation."""
        try:
            raw = await self._client.aio._api_client.async_request("get", job_id, {}, None)
            error = json.loads(raw.body or "{}").get("error") or {}
        except (*_SDK_ERRORS, AttributeError) as e:
            return f"JOB_STATE_FAILED (its reason unreadable: {excerpt(str(e))})"
        return excerpt(error.get("message") or "JOB_STATE_FAILED")

    async def answers(self, job_id: str) -> list[Answer]:
        try:
            job = await self._client.aio.batches.get(name=job_id)
            dest = job.dest
            if dest is not None and dest.file_name:
                data = await self._client.aio.files.download(file=dest.file_name)
                return [_file_answer(line) for line in data.splitlines() if line.strip()]
        except _SDK_ERRORS as e:
            raise _translate(e) from e
        inline = dest.inlined_responses if dest is not None else None
        return [_inline_answer(item) for item in inline or []]

    async def cancel(self, job_id: str) -> None:
        try:
            await self._client.aio.batches.cancel(name=job_id)
        except _SDK_ERRORS as e:
            raise _translate(e) from e


def _inline(line: dict) -> gt.InlinedRequest:
    request = line["request"]
    return gt.InlinedRequest(
        contents=request["contents"], config=request["config"], metadata={"key": line["key"]}
    )


def _file_line(line: dict) -> str:
    """One line of an input file: the key and the request as the REST API spells it."""
    inline = _inline(line)
    config = inline.config
    body: dict[str, Any] = {
        "contents": [{"role": c["role"], "parts": c["parts"]} for c in line["request"]["contents"]]
    }
    if config is not None and config.system_instruction is not None:
        system = config.system_instruction
        body["systemInstruction"] = system.model_dump(mode="json", exclude_none=True)
    generation = {
        "temperature": config.temperature if config else None,
        "maxOutputTokens": config.max_output_tokens if config else None,
        "topP": config.top_p if config else None,
        "seed": config.seed if config else None,
        "stopSequences": config.stop_sequences if config else None,
    }
    body["generationConfig"] = {k: v for k, v in generation.items() if v is not None}
    return json.dumps({"key": line["key"], "request": body}, ensure_ascii=False) + "\n"


def _inline_answer(item: gt.InlinedResponse) -> Answer:
    key = (item.metadata or {}).get("key", "")
    if item.error is not None or item.response is None:
        error = item.error
        message = f"gemini {error.code}: {error.message}" if error else "no response"
        return Answer(key, error=message)
    return Answer(key, delta=_delta(item.response))


def _file_answer(raw: bytes) -> Answer:
    try:
        line = json.loads(raw)
        key = str(line["key"])
    except (ValueError, KeyError, TypeError):
        return Answer("", error=f"gemini: unreadable result line: {excerpt(raw)}")
    if line.get("error") or not line.get("response"):
        error = line.get("error") or {}
        return Answer(key, error=f"gemini {error.get('code')}: {error.get('message')}")
    response = gt.GenerateContentResponse._from_response(response=line["response"], kwargs={})
    return Answer(key, delta=_delta(response))
