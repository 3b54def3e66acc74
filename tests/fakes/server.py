"""A small threaded HTTP server that fake providers build on.

It owns what every fake shares: a free port on 127.0.0.1, chunked streaming, a record of the
requests received, and knobs for delay and injected faults. Each provider module only turns a
request into a response in that provider's real wire format.
"""

from __future__ import annotations

import json
import random
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FAULT_KINDS = ("429", "500", "timeout", "malformed", "drop")
# injected only, never drawn by fault_rate (which would change the faults every seeded test sees)
OVERLOADED = "529"  # Anthropic's overloaded_error
JUDGE_MARKER = '{"score":'  # llmflow's judge prompt asks for this JSON


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    peer: tuple[str, int] | None = None  # the client's address: one per connection
    raw: bytes = b""  # the body as received (a multipart upload is no JSON)


@dataclass
class Response:
    """A plain JSON answer (`body`) or a stream of already-framed chunks (`chunks`)."""

    status: int = 200
    body: Any = None
    chunks: Iterable[bytes] | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """Base class: subclasses implement `route(request) -> Response` and the fault bodies.

    Every attribute set in `__init__` (of this class or a subclass) is a knob or a record that
    `reset()` puts back as a fresh server has it.
    """

    stream_content_type = "text/event-stream"
    _KEPT_BY_RESET = frozenset({"_httpd", "_lock", "_init_args", "_in_flight"})

    def __new__(cls, *args: Any, **kwargs: Any) -> FakeServer:
        server = super().__new__(cls)
        server._init_args = (args, kwargs)  # reset() builds a fresh twin to copy defaults from
        return server

    def __init__(self) -> None:
        self.delay_s = 0.0  # before the first byte of every generation answer
        self.model_delays: dict[str, float] = {}  # per model (request body "model"), else delay_s
        # known answers: (model, last user message) -> the reply (openai only), else the echo
        self.scripted: dict[tuple[str, str], str] = {}
        self.seconds_per_max_token = 0.0  # extra delay for each max_tokens/num_predict asked
        self.chunk_delay_s = 0.0  # between streamed chunks
        self.hang_s = 5.0  # how long a "timeout" fault keeps the client waiting
        self.retry_after_s: float | None = 0.01
        self.fault_rate = 0.0
        self.fault_kinds: tuple[str, ...] = FAULT_KINDS
        self.raw_response: Response | None = None  # answers every request (checks too) when set
        # streams end cleanly after half their chunks, before the final chunk, usage and [DONE]
        self.truncate_stream = False
        # after the last chunk of a stream: "drop" the connection or "hang" (hang_s) instead of
        # ending the body
        self.stream_end: str | None = None
        # a judge request (llmflow's judge prompt) gets {"score", "reason"}: 1 when the answer
        # holds the reference; with this knob, prose no JSON parser reads
        self.judge_unparseable = False
        self.judge_reply: str | None = None  # what every judge request gets, when set
        self._rng = random.Random(1234)
        self._queued_faults: deque[str] = deque()
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.completed: list[Request] = []  # generation requests answered in full
        self._in_flight = 0  # generation requests received and not yet answered (kept by reset)
        self.max_in_flight = 0  # the most ever in flight at once
        self._httpd: ThreadingHTTPServer | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeServer:
        """Serve on 127.0.0.1:`port` (0: a free one)."""
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = _HTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._httpd, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def reply(self, last: str, model: str = "") -> str:
        """The answer to a request whose last user message is `last`: the answer scripted for
        (model, last), else its echo, or a judge's verdict when it is llmflow's judge prompt."""
        if (model, last) in self.scripted:
            return self.scripted[(model, last)]
        if JUDGE_MARKER not in last:
            return f"Echo: {last}"
        if self.judge_unparseable:
            return "The answer looks fine to me."
        if self.judge_reply is not None:
            return self.judge_reply
        answer, reference = _block(last, "answer"), _block(last, "reference").strip()
        score = 1.0 if reference and reference.lower() in answer.lower() else 0.0
        reason = f"reference {'found' if score else 'missing'}"
        return json.dumps({"score": score, "reason": reason})

    # --- knobs -------------------------------------------------------------------------------

    def inject(self, *kinds: str) -> None:
        """Fail the next generation requests with these faults, in order."""
        for kind in kinds:
            assert kind in (*FAULT_KINDS, OVERLOADED), kind
            self._queued_faults.append(kind)

    def generation_requests(self) -> list[Request]:
        return [r for r in self.requests if self.is_generation(r)]

    def reset(self) -> None:
        """Every knob, record and queued fault back to a fresh server's, so that one test's
        settings (or its failure half-way) cannot leak into the next test."""
        args, kwargs = self._init_args
        fresh = type(self)(*args, **kwargs)  # not started: no socket
        with self._lock:
            for name in set(vars(self)) - set(vars(fresh)) - self._KEPT_BY_RESET:
                delattr(self, name)  # a method a test patched on the instance
            for name, value in vars(fresh).items():
                if name not in self._KEPT_BY_RESET:
                    setattr(self, name, value)

    # --- for subclasses ----------------------------------------------------------------------

    def is_generation(self, request: Request) -> bool:
        raise NotImplementedError

    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def error_response(self, status: int, message: str) -> Response:
        raise NotImplementedError

    def malformed_response(self, request: Request) -> Response:
        raise NotImplementedError

    def delay_for(self, request: Request) -> float:
        body = request.body if isinstance(request.body, dict) else {}
        delay = self.model_delays.get(body.get("model", ""), self.delay_s)
        max_tokens = body.get("max_tokens") or (body.get("options") or {}).get("num_predict") or 0
        return delay + self.seconds_per_max_token * max_tokens

    def _next_fault(self) -> str | None:
        with self._lock:
            if self._queued_faults:
                return self._queued_faults.popleft()
            if self.fault_rate and self._rng.random() < self.fault_rate:
                return self._rng.choice(self.fault_kinds)
        return None


def _block(prompt: str, name: str) -> str:
    """The text of a block of llmflow's judge prompt: <name-TOKEN>...</name-TOKEN>."""
    found = re.search(rf"<{name}-(\w+)>(.*?)</{name}-\1>", prompt, re.DOTALL)
    return found.group(2) if found else ""


def sse(payload: Any) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default backlog of 5 drops bursts

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that times out or cancels closes its end mid-answer: normal, not worth a
        # traceback in the test output; anything else is a bug in a fake and is printed
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeServer

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.fake
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:  # the client died mid-send: a real server never sees this request
            self.close_connection = True
            return
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, self.path, headers, body, self.client_address, raw)
        with fake._lock:
            fake.requests.append(request)
        generation = fake.is_generation(request)
        if not generation:
            self._answer(request, generation)
            return
        with fake._lock:
            fake._in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake._in_flight)
        try:
            self._answer(request, generation)
        finally:
            with fake._lock:
                fake._in_flight -= 1

    def _answer(self, request: Request, generation: bool) -> None:
        fake = self.fake
        if fake.raw_response is not None:
            response = fake.raw_response
        elif generation:
            response = self._generation(request)
        else:
            response = fake.route(request)
        if response is None:  # a dropped connection or a hang: no answer at all
            self.close_connection = True
            return
        self._send(response)
        if generation and response.status == 200:
            with fake._lock:
                fake.completed.append(request)

    def _generation(self, request: Request) -> Response | None:
        fake = self.fake
        fault = fake._next_fault()
        if fault == "drop":
            return None
        if fault == "timeout":
            time.sleep(fake.hang_s)
            return None
        if delay := fake.delay_for(request):
            time.sleep(delay)
        if fault == "429":
            response = fake.error_response(429, "Resource has been exhausted (e.g. check quota).")
            if fake.retry_after_s is not None:
                response.headers["Retry-After"] = f"{fake.retry_after_s:g}"
            return response
        if fault == "500":
            return fake.error_response(500, "An internal error has occurred.")
        if fault == OVERLOADED:
            return fake.error_response(529, "Overloaded")
        if fault == "malformed":
            return fake.malformed_response(request)
        response = fake.route(request)
        if fake.truncate_stream and response.chunks is not None:
            chunks = list(response.chunks)
            response.chunks = chunks[: len(chunks) // 2]
        return response

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.chunks is None:
            data = (
                json.dumps(response.body).encode()
                if not isinstance(response.body, bytes)
                else response.body
            )
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("Content-Type", response.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for index, chunk in enumerate(response.chunks):
            if index and self.fake.chunk_delay_s:
                time.sleep(self.fake.chunk_delay_s)
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        if self.fake.stream_end is not None:  # the body never ends: the connection closes
            if self.fake.stream_end == "hang":
                time.sleep(self.fake.hang_s)
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
