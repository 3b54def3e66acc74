"""Server-sent events, as the HTML spec defines them, read from a streamed HTTP body.

Lines end at CRLF, LF or CR only (`str.splitlines` would also split at U+2028, U+0085 and
others, which a JSON string may hold unescaped). An event is its `data:` lines joined by
newlines, dispatched at a blank line unless that data is empty; comments and the `event:`,
`id:` and `retry:` fields are skipped; an event the body ends in the middle of is discarded.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

DONE = "[DONE]"  # OpenAI's end of stream
DRAIN_S = 0.1  # after DONE, as the openai SDK: the rest of the body is read this long at most
_LINE_END = re.compile(rb"\r\n|\r|\n")


async def sse_data(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The data of each event up to `[DONE]`; then what follows it is read (DRAIN_S at most)
    so that the connection can be reused."""
    data: list[str] = []
    async for line in _lines(chunks):
        if line:
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value.removeprefix(" "))
            continue
        event, data = "\n".join(data), []
        if not event:  # no data, or only empty data (a keep-alive): nothing is dispatched
            continue
        if event.startswith(DONE):
            await drain(chunks)
            return
        yield event


async def _lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """Each complete line, decoded; a last line without its line end is dropped."""
    pending = b""
    async for chunk in chunks:
        pending += chunk
        # a CR at the end may be the first half of a CRLF: kept until the next chunk
        held = 1 if pending.endswith(b"\r") else 0
        *complete, rest = _LINE_END.split(pending[: len(pending) - held])
        pending = rest + pending[len(pending) - held :]
        for line in complete:
            yield line.decode("utf-8", errors="replace")
    *complete, _ = _LINE_END.split(pending)
    for line in complete:
        yield line.decode("utf-8", errors="replace")


async def drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what is left of a body whose answer is complete (DRAIN_S at most), so that its
    connection can be reused."""
    try:
        async with asyncio.timeout(DRAIN_S):
            async for _ in chunks:
                pass
    except Exception:  # noqa: BLE001 - nothing after [DONE] can undo a finished answer
        pass
