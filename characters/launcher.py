"""Running the character service as a process: serve until asked to stop, then drain.

The composition root (``eco2 grpc characters``) reads the settings, loads the characters, wires
the probes and signals, and calls ``run_service``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from characters.model import Character
from characters.server import serve


def probe_host(host: str) -> str:
    """Where to reach a server bound to ``host`` from this machine (a wildcard → loopback)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


async def accepts_connections(host: str, port: int) -> str | None:
    """None when the service's port accepts connections, else why not (the readiness probe)."""
    try:
        _, writer = await asyncio.open_connection(probe_host(host), port)
    except OSError as exc:
        return f"gRPC port {port} does not accept connections: {exc}"
    writer.close()
    return None


async def run_service(
    characters: Sequence[Character],
    stop: asyncio.Event,
    *,
    host: str,
    port: int,
    grace_s: float,
    on_drain: Callable[[], None] = lambda: None,
) -> None:
    """Serve ``characters`` on ``host:port`` until ``stop`` is set (or the server ends), then
    call ``on_drain`` and stop gracefully: in-flight calls get ``grace_s`` to finish."""
    task = asyncio.create_task(serve(characters, host=host, port=port, grace_s=grace_s))
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    on_drain()
    task.cancel()  # serve() stops the server gracefully: in-flight calls finish
    with contextlib.suppress(asyncio.CancelledError):
        await task
