"""Gemini's Batch Mode on the fake Gemini server, in the REST wire format google-genai speaks:
`models/{model}:batchGenerateContent` (inline requests, or an uploaded JSONL file), `batches/{id}`
(get; `:cancel`), `batches` (list), the resumable upload of `upload/v1beta/files` and the
download of a results file keyed by `key`.

A job is a long-running operation whose metadata holds its state (BATCH_STATE_PENDING, _RUNNING,
_SUCCEEDED, _FAILED, _CANCELLED, _EXPIRED) and, once it succeeded, its output: inlined
responses for inline requests, a `responsesFile` for a file. The test turns the clock
(`advance()`), or each get moves a job on when `auto` is set. `submitted` counts every request
a job received.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from .server import Request, Response

ORDER = ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING", "BATCH_STATE_SUCCEEDED")
ENDED = frozenset(
    {"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"}
)


@dataclass
class GeminiJob:
    name: str
    model: str
    display_name: str
    requests: list[dict]  # {"request": {...}, "metadata" | "key": ...}
    from_file: bool
    state: str = "BATCH_STATE_PENDING"
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    output: dict | None = None
    error: dict | None = None


@dataclass
class GeminiBatchEndpoints:
    """`answer(model, request) -> GenerateContentResponse` as JSON."""

    answer: Callable[[str, dict], dict] = field(compare=False)
    files: dict[str, bytes] = field(default_factory=dict)
    uploads: dict[str, str] = field(default_factory=dict)  # upload id -> file name
    jobs: dict[str, GeminiJob] = field(default_factory=dict)
    submitted: Counter[tuple[str, str]] = field(default_factory=Counter)  # (model, contents)
    auto: bool = False
    fail_next: str | None = None  # the next job FAILS with this message
    expire_next: bool = False  # the next job EXPIRES without results
    failing_prompts: dict[str, str] = field(default_factory=dict)  # last text -> its error

    def handles(self, path: str) -> bool:
        return ":batchGenerateContent" in path or "/batches" in path or "/files" in path

    def route(self, request: Request, base: str) -> Response:
        path = request.path.split("?")[0]
        if path.startswith("/upload/"):
            return self._upload(request, base)
        if path.endswith(":download"):
            name = path.split("/files/")[1].split(":")[0]
            content = self.files.get(f"files/{name}")
            if content is None:
                return _error(404, "File not found", "NOT_FOUND")
            return Response(body=content, content_type="application/octet-stream")
        if path.endswith(":batchGenerateContent"):
            model = path.split("/models/")[1].split(":")[0]
            return self._create(model, request.body or {})
        if path.rstrip("/").endswith("/batches") and request.method == "GET":
            return Response(body={"operations": [self._operation(j) for j in self.jobs.values()]})
        job_id = path.split("/batches/")[1]
        cancel = job_id.endswith(":cancel")
        job = self.jobs.get(f"batches/{job_id.removesuffix(':cancel')}")
        if job is None:
            return _error(404, f"Batch {job_id} not found", "NOT_FOUND")
        if cancel:
            if job.state not in ENDED:
                job.state = "BATCH_STATE_CANCELLED"
            return Response(body={})
        if self.auto:
            self._step(job)
        return Response(body=self._operation(job))

    def advance(self, steps: int = 1) -> None:
        for job in self.jobs.values():
            for _ in range(steps):
                self._step(job)

    def _step(self, job: GeminiJob) -> None:
        if job.state in ENDED:
            return
        if job.error is not None:
            job.state = "BATCH_STATE_FAILED"
            return
        following = ORDER[ORDER.index(job.state) + 1]
        if following == "BATCH_STATE_SUCCEEDED" and job.output == {"expire": True}:
            job.state, job.output = "BATCH_STATE_EXPIRED", None
            return
        if following == "BATCH_STATE_SUCCEEDED":
            job.output = self._results(job)
        job.state = following

    def _results(self, job: GeminiJob) -> dict:
        lines = []
        for item in job.requests:
            request = item["request"]
            text = request["contents"][-1]["parts"][0]["text"]
            if text in self.failing_prompts:
                line = {"error": {"code": 400, "message": self.failing_prompts[text]}}
            else:
                line = {"response": self.answer(job.model, request)}
            if job.from_file:
                lines.append({"key": item["key"], **line})
            else:
                lines.append({**line, "metadata": item.get("metadata")})
        if not job.from_file:
            return {"inlinedResponses": {"inlinedResponses": lines}}
        name = f"files/batch-{uuid.uuid4().hex[:12]}"
        self.files[name] = "".join(json.dumps(x) + "\n" for x in lines).encode()
        return {"responsesFile": name}

    def _create(self, model: str, body: dict) -> Response:
        batch = body.get("batch") or {}
        source = batch.get("inputConfig") or {}
        if "fileName" in source:
            content = self.files.get(source["fileName"])
            if content is None:
                return _error(400, f"File {source['fileName']} not found", "INVALID_ARGUMENT")
            requests = [json.loads(x) for x in content.decode().splitlines() if x.strip()]
        else:
            requests = (source.get("requests") or {}).get("requests") or []
        if not requests:
            return _error(400, "inputConfig has no requests", "INVALID_ARGUMENT")
        for item in requests:
            contents = json.dumps(item["request"]["contents"])
            self.submitted[(model, contents)] += 1
        name = f"batches/{uuid.uuid4().hex[:16]}"
        job = GeminiJob(name, model, batch.get("displayName", ""), requests, "fileName" in source)
        if self.fail_next is not None:
            job.error, self.fail_next = {"code": 400, "message": self.fail_next}, None
        if self.expire_next:
            job.output, self.expire_next = {"expire": True}, False
        self.jobs[name] = job
        return Response(body=self._operation(job))

    def _operation(self, job: GeminiJob) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{job.model}",
            "displayName": job.display_name,
            "state": job.state,
            "createTime": job.created,
            "updateTime": datetime.now(timezone.utc).isoformat(),
            "batchStats": {"requestCount": str(len(job.requests))},
        }
        if job.state == "BATCH_STATE_SUCCEEDED" and job.output:
            metadata["output"] = job.output
        operation: dict[str, Any] = {"name": job.name, "metadata": metadata}
        operation["done"] = job.state in ENDED
        if job.state == "BATCH_STATE_FAILED" and job.error:
            operation["error"] = job.error
        return operation

    def _upload(self, request: Request, base: str) -> Response:
        """The resumable upload: `start` answers the URL to send the bytes to; `upload,
        finalize` stores them and answers the file."""
        command = request.headers.get("x-goog-upload-command", "")
        if "start" in command:
            upload_id = uuid.uuid4().hex[:12]
            self.uploads[upload_id] = f"files/{uuid.uuid4().hex[:12]}"
            url = f"{base}/upload/v1beta/files?upload_id={upload_id}"
            return Response(body={}, headers={"x-goog-upload-url": url})
        upload_id = request.path.split("upload_id=")[-1]
        name = self.uploads.get(upload_id)
        if name is None:
            return _error(404, "Unknown upload", "NOT_FOUND")
        self.files[name] = self.files.get(name, b"") + request.raw
        file = {
            "name": name,
            "mimeType": "application/jsonl",
            "state": "ACTIVE",
            "sizeBytes": str(len(self.files[name])),
        }
        return Response(body={"file": file}, headers={"x-goog-upload-status": "final"})


def _error(status: int, message: str, name: str) -> Response:
    return Response(
        status=status, body={"error": {"code": status, "message": message, "status": name}}
    )
