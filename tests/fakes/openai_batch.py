"""The OpenAI Batch API of the fake OpenAI server: /v1/files (multipart upload, retrieve,
content) and /v1/batches (create, retrieve, list, cancel), in the real wire format.

Jobs move through their states on a clock the test turns (`advance()`), or one state each time
a client retrieves them when `auto` is set: no test sleeps. Every request line a job received is
counted (`submitted`), so a test can prove that no call was submitted twice.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from .server import Request, Response

STATES = ("validating", "in_progress", "finalizing", "completed")
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass
class FakeJob:
    id: str
    input_file_id: str
    lines: list[dict]
    metadata: dict | None
    status: str = "validating"
    created_at: int = field(default_factory=lambda: int(time.time()))
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict] | None = None
    completed_lines: int = 0


@dataclass
class OpenAIBatchEndpoints:
    """State and routes of the files and batches endpoints. `answer(body) -> dict` is the
    chat completion the fake would give for one request body."""

    answer: Callable[[dict], dict] = field(compare=False)
    files: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    # (model, the messages as JSON) -> how many times a job received that request
    submitted: Counter[tuple[str, str]] = field(default_factory=Counter)
    auto: bool = False  # each retrieve moves a job one state on
    expire_after: int | None = None  # a job expires with only this many lines done
    validation_error: str | None = None  # the next job fails validation with it
    failing_prompts: dict[str, str] = field(default_factory=dict)  # last message -> error
    shuffle: bool = True  # results come back out of order, as the API warns
    rng: random.Random = field(default_factory=lambda: random.Random(7), compare=False)

    def handles(self, path: str) -> bool:
        return "/files" in path or "/batches" in path

    def route(self, request: Request) -> Response:
        parts = request.path.split("?")[0].rstrip("/").split("/")
        tail = parts[parts.index("v1") + 1 :] if "v1" in parts else parts[1:]
        if tail[0] == "files":
            return self._files(request, tail[1:])
        return self._batches(request, tail[1:])

    # --- the clock ---------------------------------------------------------------------------

    def advance(self, steps: int = 1) -> None:
        """Every job not yet ended moves `steps` states on."""
        for job in self.jobs.values():
            for _ in range(steps):
                self._step(job)

    def _step(self, job: FakeJob) -> None:
        if job.status in TERMINAL:
            return
        if job.status == "cancelling":
            self._finish(job, "cancelled", len(job.lines) // 2)
            return
        if job.status == "validating" and self.validation_error is not None:
            job.errors = [
                {
                    "code": "invalid_request",
                    "message": self.validation_error,
                    "line": 1,
                    "param": "body",
                }
            ]
            self.validation_error = None
            job.status = "failed"
            return
        following = STATES[STATES.index(job.status) + 1]
        if following == "finalizing" and self.expire_after is not None:
            self._finish(job, "expired", self.expire_after)
        elif following == "completed":
            self._finish(job, "completed", len(job.lines))
        else:
            job.status = following
            job.completed_lines = len(job.lines) // 2 if following == "finalizing" else 0

    def _finish(self, job: FakeJob, status: str, n_done: int) -> None:
        done, left = job.lines[:n_done], job.lines[n_done:]
        outputs, errors = [], []
        for line in done:
            body = line["body"]
            last = body["messages"][-1]["content"]
            if last in self.failing_prompts:
                errors.append(
                    _line(
                        line,
                        400,
                        {
                            "error": {
                                "message": self.failing_prompts[last],
                                "type": "invalid_request_error",
                                "param": None,
                                "code": None,
                            }
                        },
                    )
                )
            else:
                outputs.append(_line(line, 200, self.answer(body)))
        reason = {
            "expired": (
                "batch_expired",
                "This request could not be executed before the completion window expired.",
            ),
            "cancelled": ("batch_cancelled", "This request was cancelled."),
        }.get(status)
        for line in left if reason else ():
            errors.append(
                {
                    "id": f"batch_req_{uuid.uuid4().hex[:20]}",
                    "custom_id": line["custom_id"],
                    "response": None,
                    "error": {"code": reason[0], "message": reason[1]},
                }
            )
        if self.shuffle:
            self.rng.shuffle(outputs)
        job.output_file_id = self._store(outputs) if outputs else None
        job.error_file_id = self._store(errors) if errors else None
        job.completed_lines = len(outputs)
        job.status = status

    def _store(self, lines: list[dict]) -> str:
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = "".join(json.dumps(x) + "\n" for x in lines).encode()
        return file_id

    # --- files -------------------------------------------------------------------------------

    def _files(self, request: Request, tail: list[str]) -> Response:
        if request.method == "POST" and not tail:
            content, filename, purpose = _multipart(request)
            file_id = f"file-{uuid.uuid4().hex[:24]}"
            self.files[file_id] = content
            return Response(body=_file_object(file_id, len(content), filename, purpose))
        if not tail or tail[0] not in self.files:
            return _error(404, "No such File object")
        if len(tail) == 2 and tail[1] == "content":
            return Response(body=self.files[tail[0]], content_type="application/octet-stream")
        return Response(body=_file_object(tail[0], len(self.files[tail[0]]), "x.jsonl", "batch"))

    # --- batches -----------------------------------------------------------------------------

    def _batches(self, request: Request, tail: list[str]) -> Response:
        if request.method == "POST" and not tail:
            return self._create(request.body or {})
        if request.method == "GET" and not tail:
            data = [self._object(job) for job in reversed(list(self.jobs.values()))]
            return Response(
                body={
                    "object": "list",
                    "data": data,
                    "has_more": False,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                }
            )
        job = self.jobs.get(tail[0])
        if job is None:
            return _error(404, f"No batch found with id '{tail[0]}'.")
        if len(tail) == 2 and tail[1] == "cancel":
            if job.status not in TERMINAL:
                job.status = "cancelling"
            return Response(body=self._object(job))
        if self.auto:
            self._step(job)
        return Response(body=self._object(job))

    def _create(self, body: dict) -> Response:
        content = self.files.get(body.get("input_file_id", ""))
        if content is None:
            return _error(400, "Invalid 'input_file_id'")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return _error(400, "Invalid endpoint or completion_window")
        lines = [json.loads(x) for x in content.decode().splitlines() if x.strip()]
        for line in lines:
            request = line["body"]
            self.submitted[(request.get("model", ""), json.dumps(request["messages"]))] += 1
        job = FakeJob(
            f"batch_{uuid.uuid4().hex[:24]}", body["input_file_id"], lines, body.get("metadata")
        )
        self.jobs[job.id] = job
        return Response(body=self._object(job))

    def _object(self, job: FakeJob) -> dict[str, Any]:
        failed = len(job.lines) - job.completed_lines if job.status in TERMINAL else 0
        return {
            "id": job.id,
            "object": "batch",
            "endpoint": "/v1/chat/completions",
            "errors": {"object": "list", "data": job.errors} if job.errors else None,
            "input_file_id": job.input_file_id,
            "completion_window": "24h",
            "status": job.status,
            "output_file_id": job.output_file_id,
            "error_file_id": job.error_file_id,
            "created_at": job.created_at,
            "in_progress_at": None,
            "expires_at": job.created_at + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {
                "total": len(job.lines),
                "completed": job.completed_lines,
                "failed": failed if job.status != "failed" else 0,
            },
            "metadata": job.metadata,
        }


def _line(line: dict, status: int, body: dict) -> dict:
    return {
        "id": f"batch_req_{uuid.uuid4().hex[:20]}",
        "custom_id": line["custom_id"],
        "response": {"status_code": status, "request_id": uuid.uuid4().hex, "body": body},
        "error": None,
    }


def _file_object(file_id: str, size: int, filename: str, purpose: str) -> dict:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": int(time.time()),
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


def _multipart(request: Request) -> tuple[bytes, str, str]:
    """The uploaded file, its name and purpose, from a multipart/form-data body."""
    raw = request.raw
    head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + raw)
    content, filename, purpose = b"", "upload.jsonl", ""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name == "file":
            content = part.get_payload(decode=True) or b""
            filename = part.get_filename() or filename
        elif name == "purpose":
            purpose = (part.get_payload(decode=True) or b"").decode()
    return content, filename, purpose


def _error(status: int, message: str) -> Response:
    return Response(
        status=status,
        body={
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )
