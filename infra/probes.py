"""The operability port of every process: ``/healthz``, ``/readyz`` and ``/metrics`` on a small
HTTP listener of its own (``ECO2_HEALTH_PORT``; 0 = none).

- ``/healthz`` — 200 while the event loop answers (the process is alive; restart it otherwise).
- ``/readyz`` — 200 when the role's own check passes (connected; for leased roles: the lease is
  held or being waited for), 503 with the reason otherwise, and 503 ``draining`` from SIGTERM on,
  so a load balancer or KEDA stops counting the pod before it exits.
- ``/metrics`` — Prometheus text: the process's default registry plus the role's own figures.

A plain asyncio server: three fixed GET routes need no framework, and it must not touch the
signal handlers the role installs for draining.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from prometheus_client import REGISTRY, generate_latest

from infra.settings import Settings

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], Awaitable[str | None]]  # None: ready; else the reason it is not
MetricsSource = Callable[[], Awaitable[bytes]]

_REQUEST_TIMEOUT_S = 5.0
_CHECK_TIMEOUT_S = 2.0
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class Probes:
    """What one process reports. ``draining`` is set by the role when SIGTERM arrives."""

    def __init__(self, role: str, ready: ReadyCheck, metrics: MetricsSource | None = None) -> None:
        self.role = role
        self.ready = ready
        self.metrics = metrics
        self.draining = False
        self.port: int | None = None  # the bound port once serving

    async def readiness(self) -> tuple[int, dict[str, str]]:
        """(status, body) of ``/readyz``."""
        if self.draining:
            return 503, {"status": "draining", "role": self.role}
        try:
            reason = await asyncio.wait_for(self.ready(), _CHECK_TIMEOUT_S)
        except Exception as exc:  # a failing check is "not ready", never a crash of the probe
            reason = f"{type(exc).__name__}: {exc}"
        if reason is not None:
            return 503, {"status": "not ready", "role": self.role, "reason": reason}
        return 200, {"status": "ready", "role": self.role}

    async def render_metrics(self) -> bytes:
        text = generate_latest(REGISTRY)
        if self.metrics is not None:
            text += await self.metrics()
        return text

    async def respond(self, method: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for one request."""
        path = path.split("?", 1)[0]
        if path not in ("/healthz", "/readyz", "/metrics"):
            return 404, "application/json", b'{"detail": "not found"}'
        if method not in ("GET", "HEAD"):
            return 405, "application/json", b'{"detail": "method not allowed"}'
        if path == "/healthz":
            return 200, "application/json", _json({"status": "alive", "role": self.role})
        if path == "/readyz":
            status, body = await self.readiness()
            return status, "application/json", _json(body)
        return 200, "text/plain; version=0.0.4; charset=utf-8", await self.render_metrics()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _REQUEST_TIMEOUT_S)
            method, path, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            status, content_type, body = await self.respond(method, path)
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + (b"" if method == "HEAD" else body)
            )
            await writer.drain()
        except (TimeoutError, ValueError, OSError, asyncio.IncompleteReadError):
            pass  # a malformed or vanished client: nothing to answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _json(body: dict[str, str]) -> bytes:
    return json.dumps(body).encode()


@contextlib.asynccontextmanager
async def serve_probes(
    settings: Settings, role: str, ready: ReadyCheck, metrics: MetricsSource | None = None
) -> AsyncIterator[Probes]:
    """Serve ``role``'s probes on ``settings.health_port`` (none when 0) while the block runs."""
    probes = Probes(role, ready, metrics)
    if settings.health_port == 0:
        yield probes
        return
    server = await asyncio.start_server(probes.handle, settings.host, settings.health_port)
    probes.port = server.sockets[0].getsockname()[1]
    log.info("%s probes on http://%s:%d (/healthz /readyz /metrics)", role, settings.host,
             probes.port)
    try:
        yield probes
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2.0)


async def redis_ready(redis: Any) -> str | None:
    """The common check: the log's Redis answers a PING."""
    try:
        await redis.ping()
    except Exception as exc:
        return f"redis is not reachable: {type(exc).__name__}"
    return None
