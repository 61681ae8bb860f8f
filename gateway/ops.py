"""Operations endpoints: ``/ready`` and ``/metrics`` (``/health`` lives in ``app.py``)."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.errors import NotReady
from gateway.state import GatewayState, gateway_state
from projections.halts import list_halts
from projections.status import running_rebuilds

log = logging.getLogger(__name__)

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
    await _refresh_projections(gw)
    return Response(m.render(), media_type=CONTENT_TYPE_LATEST)


async def _refresh_projections(gw: GatewayState) -> None:
    """``eco2_projection_halted`` from the recorded halts and the rebuild gauges from the
    checkpoint table (whichever process halts or rebuilds, this one is scraped); left as they
    were while Postgres cannot be read."""
    pool = gw.resources.pg
    if pool is None:
        return
    try:
        async with pool.acquire() as conn:
            halts = await list_halts(conn)
            rebuilds = await running_rebuilds(conn)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
        log.warning("projection figures not read for /metrics: %s", exc)
        return
    m = gw.metrics
    m.projection_halted.clear()
    for halt in halts:
        m.projection_halted.labels(projection=halt.projection, shard=str(halt.shard)).set(1)
    m.rebuild_position.clear()
    m.rebuild_target.clear()
    for building in rebuilds:
        progress = building.progress(m.log.heads)
        m.rebuild_position.labels(building.name).set(progress.position)
        m.rebuild_target.labels(building.name).set(progress.target)
