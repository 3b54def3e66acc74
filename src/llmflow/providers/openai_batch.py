"""OpenAI's Batch API (and any OpenAI-compatible server that offers it), through the openai SDK:
a JSONL file uploaded with purpose "batch", a job on /v1/chat/completions with a 24 h window,
its answers in an output file and its failures in an error file, matched by `custom_id`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import BadResponse
from ..types import Delta, GenerationSettings, Message
from .base import excerpt
from .batch_api import Answer, JobState
from .openai_compat import _SDK_ERRORS, _body_message, _map_usage, _translate, request_body

ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
LABEL = "llmflow_job"  # the metadata key that names a job


class OpenAIBatch:
    provider = "openai"
    max_requests = 50_000
    max_bytes = 190 * 1024 * 1024  # under the 200 MB a file may hold, with room to spare

    def __init__(self, client: Any, model: str) -> None:
        self._client = client
        self.model = model

    @classmethod
    def of(cls, provider: Any) -> OpenAIBatch:
        """The batch API beside an opened OpenAICompatProvider: its client, key and base URL."""
        return cls(provider._client, provider.model)

    def request(
        self, key: str, messages: tuple[Message, ...], settings: GenerationSettings
    ) -> bytes:
        body = request_body(self.model, messages, settings)
        line = {"custom_id": key, "method": "POST", "url": "/v1/chat/completions", "body": body}
        return json.dumps(line, ensure_ascii=False).encode() + b"\n"

    async def submit(self, requests: list[bytes], label: str) -> str:
        try:
            upload = await self._client.files.create(
                file=(f"{label}.jsonl", b"".join(requests)), purpose="batch"
            )
            job = await self._client.batches.create(
                input_file_id=upload.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={LABEL: label},
            )
        except _SDK_ERRORS as e:
            raise _translate(e) from e
        return job.id

    async def find(self, label: str) -> str | None:
        try:
            async for job in self._client.batches.list(limit=100):
                if (job.metadata or {}).get(LABEL) == label:
                    return job.id
        except _SDK_ERRORS as e:
            raise _translate(e) from e
        return None

    async def state(self, job_id: str) -> JobState:
        try:
            job = await self._client.batches.retrieve(job_id)
        except _SDK_ERRORS as e:
            raise _translate(e) from e
        counts = job.request_counts
        failure = None
        if job.status == "failed":
            errors = job.errors.data if job.errors and job.errors.data else []
            failure = "; ".join(_job_error(e) for e in errors[:3]) or "the job failed validation"
        return JobState(
            state=job.status,
            ended=job.status in ENDED,
            done=counts.completed + counts.failed if counts else None,
            total=counts.total if counts else None,
            failure=failure,
        )

    async def answers(self, job_id: str) -> list[Answer]:
        try:
            job = await self._client.batches.retrieve(job_id)
            found = []
            for file_id in (job.output_file_id, job.error_file_id):
                if file_id:
                    found += await self._read_lines(file_id)
        except _SDK_ERRORS as e:
            raise _translate(e) from e
        return found

    async def _read_lines(self, file_id: str) -> list[Answer]:
        """A results file read a line at a time: 50,000 answers are some 35 MB, which whole, and
        again split into lines, the process would hold twice over."""
        files = self._client.files.with_streaming_response
        async with files.content(file_id) as response:
            return [_answer(line) async for line in response.iter_lines() if line]

    async def cancel(self, job_id: str) -> None:
        try:
            await self._client.batches.cancel(job_id)
        except _SDK_ERRORS as e:
            raise _translate(e) from e


def _job_error(error: Any) -> str:
    where = f" (line {error.line})" if getattr(error, "line", None) else ""
    return f"{error.code or 'error'}: {error.message or ''}{where}"


def _answer(raw: str | bytes) -> Answer:
    """One line of an output or error file: the answer, or why there is none."""
    try:
        line = json.loads(raw)
        key = str(line["custom_id"])
    except (ValueError, KeyError, TypeError):
        raise BadResponse(f"openai: unreadable batch result line: {excerpt(raw)}") from None
    error, response = line.get("error"), line.get("response") or {}
    if error:
        code = error.get("code") or "error"
        expired = code in ("batch_expired", "batch_cancelled")
        return Answer(key, error=f"{code}: {error.get('message') or ''}", expired=expired)
    body = response.get("body") if isinstance(response, Mapping) else None
    status = response.get("status_code") if isinstance(response, Mapping) else None
    if status != 200 or not isinstance(body, Mapping):
        message = (
            _body_message((body or {}).get("error", body)) if isinstance(body, Mapping) else body
        )
        return Answer(key, error=f"openai {status}: {excerpt(message)}")
    try:
        choice = body["choices"][0]
        text = choice["message"].get("content") or ""
        usage = _map_usage(body["usage"]) if body.get("usage") else None
    except (KeyError, IndexError, TypeError, AttributeError):
        return Answer(key, error=f"openai: unreadable answer: {excerpt(body)}")
    delta = Delta(
        text=text if isinstance(text, str) else "",
        usage=usage,
        finish_reason=choice.get("finish_reason"),
        model_version=body.get("model"),
    )
    return Answer(key, delta=delta, service_tier=body.get("service_tier"))
