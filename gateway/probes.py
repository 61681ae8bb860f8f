"""The gateway's probe port (``ECO2_HEALTH_PORT``): ``/healthz``, ``/readyz``, ``/metrics`` like
every role, served from the app's lifespan, so it runs however uvicorn is started.

``/readyz`` is ``/ready``'s check. SIGTERM starts uvicorn's graceful shutdown (stop accepting,
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

from gateway.ops import not_ready_reason, render_metrics
from gateway.state import GatewayState
from infra.probes import Probes, serve_probes


@asynccontextmanager
async def gateway_probes(gw: GatewayState) -> AsyncIterator[Probes]:
    """Serve the gateway's probes while the app runs (nothing when the port setting is 0)."""

    async def ready() -> str | None:
        return await not_ready_reason(gw)

    async def metrics() -> bytes:
        return await render_metrics(gw)

    async with serve_probes(gw.resources.settings, "gateway", ready, metrics) as probes:
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
