"""A checkpoint is (position, event id): when Redis loses its tail and reuses positions, the
projector stops loudly (log, metric, /ops row) instead of silently never reading the new events,
and ``eco2 projections rebuild`` recovers it."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY, CollectorRegistry

from eventstore.store import EventStore
from projections.builtin import get_projection
from projections.checkpoint_check import mismatches
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.rebuild import rebuild
from projections.runner import ProjectorService
from projections.synthetic import SyntheticLog
from projections.worker import ProjectorOptions
from tests.projections.helpers import load, verify_all, wait_caught_up

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

FAST = ProjectorOptions(batch_size=50, block_ms=100, lease_retry_s=0.2)


async def lose_tail(redis: aioredis.Redis, side: ReadSide, shard: int, count: int) -> int:
    """What an AOF ``everysec`` power loss does: the last ``count`` entries and the head go
    back, so the next appends reuse their positions. Returns the new head."""
    keys = side.layout.keys(shard)
    tail = await redis.xrevrange(keys.events, count=count + 1)
    await redis.xdel(keys.events, *[entry_id for entry_id, _ in tail[:count]])
    kept = tail[count][0]
    await redis.execute_command("XSETID", keys.events, kept)
    head = int(kept.split("-")[0])
    await redis.set(keys.head, head)
    return head


async def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def gauge(name: str, shard: int) -> float | None:
    return REGISTRY.get_sample_value(
        "eco2_projection_checkpoint_mismatch", {"projection": name, "shard": str(shard)}
    )


async def test_reused_positions_stop_the_projector_until_a_rebuild(
    side: ReadSide, store: EventStore, redis_client: aioredis.Redis
) -> None:
    log = SyntheticLog(side.registry)
    await load(store, log, 60)
    service = ProjectorService(
        side, [get_projection("scans")], options=FAST,
        metrics=ProjectionMetrics.create(CollectorRegistry()),
    )
    task = asyncio.create_task(service.run())
    try:
        await wait_caught_up(side, names=["scans"])
        shard = 0
        await lose_tail(redis_client, side, shard, 5)
        await load(store, log, 40)  # new events reuse the lost positions (and go beyond)

        async def stopped() -> bool:
            async with side.pool.acquire() as conn:
                return ("scans", shard) in await mismatches(conn)

        await wait_for(stopped)
        assert gauge("scans", shard) == 1
        async with side.pool.acquire() as conn:
            detail = (await mismatches(conn))[("scans", shard)]
        assert "Redis lost its tail" in detail
        # Stopped means stopped: the checkpoint does not move while the log grows.
        async with side.pool.acquire() as conn:
            before = await conn.fetchval(
                "SELECT position FROM checkpoints WHERE projection = 'scans' AND shard = $1", shard
            )
        await load(store, log, 20)
        await asyncio.sleep(0.6)
        async with side.pool.acquire() as conn:
            after = await conn.fetchval(
                "SELECT position FROM checkpoints WHERE projection = 'scans' AND shard = $1"
                " AND suffix = (SELECT 'v' || active_version FROM projections WHERE name = 'scans')",
                shard,
            )
        assert after == before

        await rebuild(side, get_projection("scans"))

        async def recovered() -> bool:
            async with side.pool.acquire() as conn:
                return ("scans", shard) not in await mismatches(conn)

        await wait_for(recovered)
        await wait_caught_up(side, names=["scans"])
        assert gauge("scans", shard) == 0
        reports = [r for r in await verify_all(side) if r.name == "scans"]
        assert all(r.clean for r in reports)
    finally:
        await service.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_head_below_the_checkpoint_stops_the_projector(
    side: ReadSide, store: EventStore, redis_client: aioredis.Redis
) -> None:
    log = SyntheticLog(side.registry)
    await load(store, log, 30)
    service = ProjectorService(
        side, [get_projection("scans")], options=FAST,
        metrics=ProjectionMetrics.create(CollectorRegistry()),
    )
    task = asyncio.create_task(service.run())
    try:
        await wait_caught_up(side, names=["scans"])
        await lose_tail(redis_client, side, 1, 3)

        async def stopped() -> bool:
            async with side.pool.acquire() as conn:
                found = await mismatches(conn)
            return "below the checkpoint" in found.get(("scans", 1), "")

        await wait_for(stopped)
    finally:
        await service.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task
