"""Operations endpoints: ``/ready`` and ``/metrics`` (``/health`` lives in ``app.py``)."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import NotReady
from gateway.state import gateway_state

READY_TIMEOUT_S = 2.0


async def ready(request: Request) -> JSONResponse:
    """200 when Redis answers and every live shard is subscribed, else 503."""
    gw = gateway_state(request)
    try:
        await asyncio.wait_for(gw.resources.redis.ping(), READY_TIMEOUT_S)
    except (RedisError, OSError, TimeoutError) as exc:
        raise NotReady(f"redis is not reachable: {type(exc).__name__}") from exc
    if gw.hub.pubsub_connections < gw.resources.layout.shards:
        raise NotReady("live updates are reconnecting")
    return JSONResponse({"status": "ready"})


async def metrics(request: Request) -> Response:
    """Prometheus text format; log figures are read from Redis now."""
    gw = gateway_state(request)
    m = gw.metrics
    await m.log.refresh(gw.resources.redis, gw.resources.layout)
    m.hub_pubsub.set(gw.hub.pubsub_connections)
    m.hub_redis.set(await gw.hub.redis_connections())
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)
