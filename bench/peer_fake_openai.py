#!/usr/bin/env python3
"""Tiny fake OpenAI-compatible server (standard library only, asyncio): the peer harness's
(../shared/bench/peers/fake_openai.py), plus the time of the first chat request in /__stats
(`first_chat_at`, epoch seconds) for bench/bigrun.py.

Binds 127.0.0.1 only.  Endpoints:
  POST /v1/chat/completions   chat.completion JSON (with usage), or SSE when "stream": true
  GET  /v1/models             minimal model list
  GET  /__stats               {"requests": N, "chat_requests": N, "stream_requests": N,
                               "max_inflight": N, "errors": N, "since_reset_s": S}
  POST /__reset               zero the counters

Env:
  DELAY_MS   artificial delay before answering each chat request (default 0)
  PORT       port (default 18080)
  STATS_FILE if set, final counters are written there as JSON on SIGTERM/SIGINT
"""

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import uuid

HOST = "127.0.0.1"
PORT = int(os.environ.get("PORT", "18080"))
DELAY_S = float(os.environ.get("DELAY_MS", "0")) / 1000.0
STATS_FILE = os.environ.get("STATS_FILE")

STATS = {}


def reset_stats():
    STATS.clear()
    STATS.update(
        requests=0,
        chat_requests=0,
        stream_requests=0,
        inflight=0,
        max_inflight=0,
        errors=0,
        t0=time.time(),
        first_chat_at=None,
    )


reset_stats()


def ntok(text):
    return max(1, len(str(text).split()))


def last_user_text(messages):
    for m in reversed(messages or []):
        c = m.get("content", "")
        if isinstance(c, list):  # content parts
            c = " ".join(p.get("text", "") for p in c if isinstance(p, dict))
        if m.get("role") == "user":
            return c
    return ""


def make_reply(body):
    msgs = body.get("messages") or []
    user = last_user_text(msgs)
    content = "Echo: " + user[:200]
    prompt_tokens = sum(ntok(m.get("content", "")) for m in msgs)
    completion_tokens = ntok(content)
    return content, prompt_tokens, completion_tokens


def completion_json(body):
    content, pt, ct = make_reply(body)
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "gpt-4o-mini"),
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
    }


def sse_chunks(body):
    content, pt, ct = make_reply(body)
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    model = body.get("model", "gpt-4o-mini")

    def chunk(delta, finish=None, usage=None, choices=True):
        d = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            if choices
            else [],
        }
        if usage is not None:
            d["usage"] = usage
        return ("data: " + json.dumps(d) + "\n\n").encode()

    out = [chunk({"role": "assistant", "content": ""})]
    words = content.split(" ")
    for i, w in enumerate(words):
        out.append(chunk({"content": (w if i == 0 else " " + w)}))
    out.append(chunk({}, finish="stop"))
    so = body.get("stream_options") or {}
    if so.get("include_usage"):
        out.append(
            chunk(
                None,
                usage={"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
                choices=False,
            )
        )
    out.append(b"data: [DONE]\n\n")
    return out


def http_head(status, headers):
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}.get(
        status, "OK"
    )
    lines = [f"HTTP/1.1 {status} {reason}"] + ["{}: {}".format(*kv) for kv in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def send_json(writer, status, obj, keep_alive):
    data = json.dumps(obj).encode()
    writer.write(
        http_head(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                ("Connection", "keep-alive" if keep_alive else "close"),
            ],
        )
        + data
    )
    await writer.drain()


async def read_body(reader, headers):
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = await reader.readline()
            size = int(size_line.strip().split(b";")[0] or b"0", 16)
            if size == 0:
                await reader.readline()  # trailing CRLF (no trailers expected)
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        return b"".join(parts)
    n = int(headers.get("content-length", "0") or 0)
    return await reader.readexactly(n) if n else b""


async def handle(reader, writer):  # noqa: C901 (the peer harness's server, kept as it is there)
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            if line in (b"\r\n", b"\n"):
                continue
            try:
                method, path, version = line.decode("latin-1").split()
            except ValueError:
                break
            headers = {}
            while True:
                h = await reader.readline()
                if h in (b"\r\n", b"\n", b""):
                    break
                k, _, v = h.decode("latin-1").partition(":")
                headers[k.strip().lower()] = v.strip()
            body = await read_body(reader, headers)
            conn = headers.get("connection", "").lower()
            keep_alive = (conn != "close") if version == "HTTP/1.1" else (conn == "keep-alive")
            path = path.split("?")[0]

            if method == "POST" and path.endswith("/chat/completions"):
                STATS["requests"] += 1
                STATS["chat_requests"] += 1
                if STATS["first_chat_at"] is None:
                    STATS["first_chat_at"] = time.time()
                STATS["inflight"] += 1
                STATS["max_inflight"] = max(STATS["max_inflight"], STATS["inflight"])
                try:
                    try:
                        req = json.loads(body or b"{}")
                    except Exception:
                        STATS["errors"] += 1
                        await send_json(
                            writer,
                            400,
                            {"error": {"message": "bad json", "type": "invalid_request_error"}},
                            keep_alive,
                        )
                        continue
                    if DELAY_S:
                        await asyncio.sleep(DELAY_S)
                    if req.get("stream"):
                        STATS["stream_requests"] += 1
                        writer.write(
                            http_head(
                                200,
                                [
                                    ("Content-Type", "text/event-stream"),
                                    ("Cache-Control", "no-cache"),
                                    ("Transfer-Encoding", "chunked"),
                                    ("Connection", "keep-alive" if keep_alive else "close"),
                                ],
                            )
                        )
                        for c in sse_chunks(req):
                            writer.write(b"%x\r\n" % len(c) + c + b"\r\n")
                        writer.write(b"0\r\n\r\n")
                        await writer.drain()
                    else:
                        await send_json(writer, 200, completion_json(req), keep_alive)
                finally:
                    STATS["inflight"] -= 1
            elif method == "GET" and path.endswith("/models"):
                STATS["requests"] += 1
                await send_json(
                    writer,
                    200,
                    {
                        "object": "list",
                        "data": [
                            {
                                "id": "gpt-4o-mini",
                                "object": "model",
                                "created": 0,
                                "owned_by": "fake",
                            }
                        ],
                    },
                    keep_alive,
                )
            elif method == "GET" and path == "/__stats":
                s = dict(STATS)
                s["since_reset_s"] = round(time.time() - s.pop("t0"), 3)
                await send_json(writer, 200, s, keep_alive)
            elif method == "POST" and path == "/__reset":
                reset_stats()
                await send_json(writer, 200, {"ok": True}, keep_alive)
            else:
                STATS["requests"] += 1
                STATS["errors"] += 1
                await send_json(
                    writer,
                    404,
                    {"error": {"message": f"not found: {method} {path}"}},
                    keep_alive,
                )
            if not keep_alive:
                break
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def main():
    server = await asyncio.start_server(handle, HOST, PORT, backlog=1024)
    print(
        f"fake_openai listening on http://{HOST}:{PORT} delay_ms={DELAY_S * 1000:g} "
        f"pid={os.getpid()}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    if STATS_FILE:
        s = dict(STATS)
        s["since_reset_s"] = round(time.time() - s.pop("t0"), 3)
        with open(STATS_FILE, "w") as f:
            json.dump(s, f)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
