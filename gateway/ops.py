"""Operations endpoints: ``/ready`` and ``/metrics`` (``/health`` lives in ``app.py``)."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import NotReady
from gateway.state import GatewayState, gateway_state

READY_TIMEOUT_S = 2.0


async def ready(request: Request) -> JSONResponse:
    """200 when Redis answers and every live shard is subscribed, else 503."""
    reason = await not_ready_reason(gateway_state(request))
    if reason is not None:
        raise NotReady(reason)
    return JSONResponse({"status": "ready"})


async def not_ready_reason(gw: GatewayState) -> str | None:
    """Why this gateway is not ready (None: it is): ``/ready`` and the probe port's ``/readyz``."""
    try:
        await asyncio.wait_for(gw.resources.redis.ping(), READY_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        return f"redis is not reachable: {type(exc).__name__}"
    if gw.hub.pubsub_connections < gw.resources.layout.shards:
        return "live updates are reconnecting"
    return None


async def metrics(request: Request) -> Response:
    """Prometheus text format; log figures are read from Redis now."""
    return Response(await render_metrics(gateway_state(request)), media_type=CONTENT_TYPE_LATEST)


async def render_metrics(gw: GatewayState) -> bytes:
    """The gateway's metrics (``/metrics`` and the probe port's)."""
    m = gw.metrics
    await m.log.refresh(gw.resources.redis, gw.resources.layout)
    m.hub_pubsub.set(gw.hub.pubsub_connections)
    m.hub_redis.set(await gw.hub.redis_connections())
    return m.render()
