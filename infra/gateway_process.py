"""``eco2 gateway``: the gateway process — uvicorn serving ``gateway.app:create_app`` — with the
probes every role has on ``ECO2_HEALTH_PORT``.

The probe port asks the gateway's own ``/ready`` and ``/metrics`` on its serving port, so
``/readyz`` is true end to end (the app answers, Redis is reachable, live updates subscribed).
SIGTERM drains the uvicorn way: stop accepting, let open requests and streams finish for
``ECO2_DRAIN_GRACE_S``, then close; ``/readyz`` answers ``draining`` from the signal on.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import FrameType

import httpx
import uvicorn

from infra.probes import Probes, serve_probes
from infra.settings import Settings


class DrainingServer(uvicorn.Server):
    """uvicorn's server, telling the probes when a signal starts its graceful shutdown."""

    def __init__(self, config: uvicorn.Config, probes: Probes) -> None:
        super().__init__(config)
        self.probes = probes

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.probes.draining = True
        super().handle_exit(sig, frame)


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        "gateway.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # the edge middleware writes one JSON line per request
        timeout_graceful_shutdown=max(1, round(settings.drain_grace_s)),
    )


async def run_gateway(settings: Settings) -> None:
    """Serve the gateway and its probes until a signal has drained it."""
    local = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"http://{local}:{settings.port}"
    async with httpx.AsyncClient(base_url=base, timeout=2.0) as http:

        async def ready() -> str | None:
            try:
                response = await http.get("/ready")
            except httpx.HTTPError as exc:
                return f"the gateway does not answer yet: {type(exc).__name__}"
            if response.status_code != 200:
                return str(response.json().get("detail", response.status_code))
            return None

        async def metrics() -> bytes:
            with contextlib.suppress(httpx.HTTPError):
                response = await http.get("/metrics")
                if response.status_code == 200:
                    return response.content
            return b""

        async with serve_probes(settings, "gateway", ready, metrics) as probes:
            server = DrainingServer(uvicorn_config(settings), probes)
            await server.serve()


def main(settings: Settings) -> None:
    asyncio.run(run_gateway(settings))
