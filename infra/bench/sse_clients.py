"""The SSE clients of ``eco2 bench sse`` as child processes (``python -m infra.bench.sse_clients``).

10,000 streams do not fit in the bench's own process: one process's file descriptors and one
event loop would cap them, and an ``httpx`` client per stream costs more CPU than the gateway
it measures. Each child here reads its share of the streams from stdin (JSON: ``port``,
``streams`` as ``[job, authorization]`` pairs, ``handshakes`` in flight, ``deadline_s``), opens
them as plain HTTP/1.1 connections decoded by a small chunked + SSE parser, prints ``ready N``
once every stream has its job's first event or has failed (N: the streams open), and when every stream has ended (the gateway closes it
after ``done``) or the deadline passes writes, for each stream, the ids received and the
``time.perf_counter()`` of each to the file given as its argument. ``perf_counter`` is
``CLOCK_MONOTONIC`` on Linux, one clock for every process of the machine, so the parent
subtracts its append times from these directly.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.process_limits import raise_open_files_limit


class SseStream(asyncio.Protocol):
    """One ``GET .../events``: HTTP/1.1 response head, chunked body, SSE messages."""

    def __init__(self, request: bytes, on_first: Callable[[], None]) -> None:
        self.request = request
        self.on_first = on_first
        self.ids: list[int] = []
        self.times: list[float] = []
        self.status = 0
        self.error = ""
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buf = b""
        self._head = True
        self._chunked = True
        self._sse = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self._buf += data
        if self._head:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self._buf = self._buf[:end].decode("latin-1"), self._buf[end + 4:]
            self._head = False
            self.status = int(head.split(" ", 2)[1])
            self._chunked = "transfer-encoding: chunked" in head.lower()
            if self.status != 200:
                self.error = head.splitlines()[0]
                self._finish()
                return
        if self._chunked:
            self._dechunk()
        else:
            self._sse += self._buf
            self._buf = b""
        self._messages(now)

    def _dechunk(self) -> None:
        buf, pos = self._buf, 0
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                break
            size = int(buf[pos:line_end].split(b";", 1)[0], 16)
            if size == 0:  # the last chunk: the server ended the stream
                self._buf = b""
                self._finish()
                return
            start = line_end + 2
            if len(buf) < start + size + 2:
                break
            self._sse += buf[start:start + size]
            pos = start + size + 2
        self._buf = buf[pos:]

    def _messages(self, now: float) -> None:
        text = self._sse.replace(b"\r\n", b"\n")
        *complete, self._sse = text.split(b"\n\n")
        for block in complete:
            event_id = None
            name = b""
            for line in block.split(b"\n"):
                if line.startswith(b"id:"):
                    event_id = line[3:].strip()
                elif line.startswith(b"event:"):
                    name = line[6:].strip()
            if event_id is None or name == b"keepalive":
                continue
            version = int(event_id)
            self.ids.append(version)
            self.times.append(now)
            if len(self.ids) == 1:
                self.started.set_result(None)
                self.on_first()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None and not self.error:
            self.error = repr(exc)
        self._finish()

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.ended.done():
            self.ended.set_result(None)
        if not self.started.done():  # ended before its first event: it failed to open
            self.started.set_result(None)
            self.on_first()


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Open, follow and end the streams of ``spec``; what each received."""
    loop = asyncio.get_running_loop()
    port = int(spec["port"])
    gate = asyncio.Semaphore(int(spec.get("handshakes", 50)))
    settled = 0
    all_open = asyncio.Event()
    total = len(spec["streams"])

    def first() -> None:  # a stream has its first event, or ended without one
        nonlocal settled
        settled += 1
        if settled == total:
            all_open.set()

    def request(job: str, authorization: str) -> bytes:
        return (
            f"GET /api/v1/scan/{job}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: {authorization}\r\nAccept: text/event-stream\r\n"
            "Cache-Control: no-cache\r\n\r\n"
        ).encode()

    streams = [SseStream(request(job, auth), first) for job, auth in spec["streams"]]

    async def connect(stream: SseStream) -> None:
        async with gate:  # handshakes in flight stay bounded: hold it until the first event
            try:
                await loop.create_connection(lambda: stream, "127.0.0.1", port)
            except OSError as exc:
                stream.error = repr(exc)
                stream._finish()
                return
            await stream.started

    deadline = loop.time() + float(spec.get("deadline_s", 600))
    connecting = asyncio.gather(*(connect(s) for s in streams))
    try:
        async with asyncio.timeout_at(deadline):
            await connecting
            await all_open.wait()
    except TimeoutError:
        pass
    opened = sum(1 for s in streams if s.ids)
    sys.stdout.write(f"ready {opened}\n")
    sys.stdout.flush()
    pending = [s.ended for s in streams if not s.ended.done()]
    if pending:
        await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
    for s in streams:
        s._finish()
    errors = [s.error for s in streams if s.error]
    return {
        "ids": [s.ids for s in streams], "times": [s.times for s in streams],
        "errors": errors[:5], "error_count": len(errors),
    }


def main() -> None:
    raise_open_files_limit()
    spec = json.loads(sys.stdin.read())
    Path(sys.argv[1]).write_text(json.dumps(asyncio.run(run(spec))))


if __name__ == "__main__":
    main()
