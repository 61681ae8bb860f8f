"""The load generators' HTTP clients: the benches share the CPU with the system they measure,
so simulated users talk bare HTTP/1.1 (a general client costs several times more per request),
and the few httpx clients left are kept small.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx


class StreamRefused(httpx.HTTPError):
    """An SSE request answered with a status other than 200/204."""

    def __init__(self, status: int) -> None:
        super().__init__(f"stream answered {status}")
        self.status = status


class UserConnection:
    """One simulated user's own keep-alive HTTP/1.1 connection, as a phone app holds one."""

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = httpx.URL(base_url)
        self.host, self.port = parts.host, parts.port or 80
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {self.host}:{self.port}\r\nContent-Type: application/json\r\n{extra}"
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def post(self, path: str, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
        """(status, JSON body) of a POST; raises ``OSError`` when the connection breaks."""
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        payload = json.dumps(body).encode()
        extra = "".join(f"{k.replace('_', '-')}: {v}\r\n" for k, v in headers.items())
        writer.write(
            f"POST {path} HTTP/1.1\r\n{self._head}{extra}Content-Length: {len(payload)}\r\n\r\n"
            .encode() + payload
        )
        try:
            status = int((await reader.readline()).split(b" ", 2)[1])
            length, close = 0, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "connection" and "close" in value.lower():
                    close = True
            data = json.loads(await reader.readexactly(length)) if length else None
        except (IndexError, ValueError, asyncio.IncompleteReadError) as exc:
            self.close()
            raise ConnectionError(f"bad HTTP response: {exc}") from exc
        if close:
            self.close()
        return status, data

    async def post_once(self, path: str, body: dict[str, Any], *, attempts: int = 3,
                        key: str | None = None) -> tuple[int, Any]:
        """``post`` under one idempotency key (``key``, else a fresh one), retried on a dropped
        connection (a keep-alive connection the server is closing fails the request; the retry
        is safe)."""
        key = key or uuid.uuid4().hex
        for attempt in range(attempts):
            try:
                return await self.post(path, body, X_Idempotency_Key=key)
            except OSError:
                self.close()
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def sse_events(base_url: str, path: str, headers: dict[str, str]
                     ) -> AsyncIterator[tuple[str, str, str]]:
    """(event, id, data) of one SSE response, read with a bare HTTP/1.1 connection: hundreds
    of streams through httpx cost the bench more CPU than the system under test spends."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    try:
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Accept: text/event-stream",
                 "Connection: close", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        status = int((await reader.readline()).split()[1])
        chunked = False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            chunked |= line.lower().startswith(b"transfer-encoding: chunked")
        if status == 204:
            return
        if status != 200:
            raise StreamRefused(status)
        pending, event, event_id, data = b"", "", "", ""
        while True:
            if chunked:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                pending += await reader.readexactly(size + 2)
                pending = pending[:-2]
            else:
                chunk = await reader.read(65536)
                if not chunk:
                    return
                pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line_text = raw.decode().rstrip("\r")
                if line_text.startswith("event:"):
                    event = line_text[6:].strip()
                elif line_text.startswith("data:"):
                    data = line_text[5:].strip()
                elif line_text.startswith("id:"):
                    event_id = line_text[3:].strip()
                elif line_text == "" and event:
                    yield event, event_id, data
                    event, data = "", ""
    finally:
        writer.close()


@asynccontextmanager
async def http_clients(
    base_url: str, count: int = 16, *, connections: int = 16
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Several small clients: one httpx pool with hundreds of connections spends its time
    scanning them (quadratic), which would make the bench measure itself."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    clients = [
        httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) for _ in range(count)
    ]
    try:
        yield clients
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
