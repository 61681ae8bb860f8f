"""``eco2 gateway``: the gateway process (uvicorn serving ``infra.gateway_app:create_app``), as a
container runs it. Its probes come with the app (``infra.gateway_probes``, on ``ECO2_HEALTH_PORT``).

SIGTERM drains the uvicorn way: stop accepting, let open requests and SSE streams finish for
``ECO2_DRAIN_GRACE_S``, then close them and exit.
"""

from __future__ import annotations

import uvicorn

from infra.settings import Settings


def uvicorn_config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        "infra.gateway_app:create_app",  # with the process's logging and tracing
        factory=True,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,  # the edge middleware writes one JSON line per request
        proxy_headers=False,  # ECO2_TRUST_FORWARDED decides, in the edge middleware
        timeout_graceful_shutdown=max(1, round(settings.drain_grace_s)),
    )


def main(settings: Settings) -> None:
    uvicorn.Server(uvicorn_config(settings)).run()
