"""The gateway's probe port (``ECO2_HEALTH_PORT``): ``/healthz``, ``/readyz``, ``/metrics`` like
every role, served beside the app (``infra.gateway_app`` runs it in the lifespan), so it runs however uvicorn
is started.

``/readyz`` is ``/ready``'s check and ``/metrics`` the gateway's (``gateway.ops``' handlers). SIGTERM starts uvicorn's graceful shutdown (stop accepting,
let open requests and streams finish); the probes say ``draining`` from that signal on: the
lifespan chains a handler in front of uvicorn's own, which stays in charge.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

from starlette.requests import Request

from gateway import ops
from gateway.errors import NotReady
from gateway.state import STATE_KEY, GatewayState
from infra.probes import Probes, serve_probes
from infra.settings import Settings


@asynccontextmanager
async def gateway_probes(settings: Settings, gw: GatewayState) -> AsyncIterator[Probes]:
    """Serve the gateway's probes while the app runs (nothing when the port setting is 0)."""

    def request(path: str) -> Request:  # what ops' handlers read: the lifespan's state
        return Request({"type": "http", "method": "GET", "path": path, "headers": [],
                        "query_string": b"", "state": {STATE_KEY: gw}})

    async def ready() -> str | None:  # exactly /ready's check
        try:
            await ops.ready(request("/ready"))
        except NotReady as exc:
            return exc.detail
        return None

    async def metrics() -> bytes:  # exactly /metrics
        return bytes((await ops.metrics(request("/metrics"))).body)

    async with serve_probes(settings, "gateway", ready, metrics) as probes:
        restore = _draining_on_signals(probes)
        try:
            yield probes
        finally:
            restore()


def _draining_on_signals(probes: Probes) -> Any:
    """Mark ``probes`` draining on SIGTERM/SIGINT, then call the handler installed before
    (uvicorn's); returns a function that puts that handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals reach the main thread only (tests run apps elsewhere)
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

    def handler(sig: int, frame: FrameType | None) -> None:
        probes.draining = True
        before = previous[signal.Signals(sig)]
        if callable(before):
            before(sig, frame)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, before in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, before)

    return restore
