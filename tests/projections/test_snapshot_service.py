"""N snapshot projectors: a lease per shard, so a second copy never steals the first's entries.

Runs on a single Redis node and on a Redis Cluster (the lease key lives in the shard's slot).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

import schemas
from eventstore.consumer import RunnerOptions
from eventstore.keys import Layout
from eventstore.lease import RedisLease
from eventstore.redis_client import AsyncRedis
from eventstore.store import EventStore
from projections.snapshot import SNAPSHOT_GROUP
from projections.snapshot_reads import read_snapshot
from projections.snapshot_service import LeaseOptions, SnapshotService
from tests.gateway.helpers import append, full_scan

pytestmark = [pytest.mark.redis, pytest.mark.slow]
FAST = RunnerOptions(block_ms=100, claim_interval_s=0.1, claim_idle_ms=1000)
# Short TTL only where a lease is meant to expire (a stuck owner); an owner that is alive keeps
# its leases through an event-loop stall of a loaded machine (renewed every third of the TTL),
# and one that stops gives them back at once, so a long TTL costs the take-over test nothing.
LEASE = LeaseOptions(ttl_ms=1000, retry_s=0.05)
HELD = LeaseOptions(ttl_ms=30_000, retry_s=0.05)


@pytest.fixture
def redis_url(redis_targets: str) -> str:
    return redis_targets


async def until(condition: object, within_s: float = 20) -> None:
    assert callable(condition)
    async with asyncio.timeout(within_s):
        while not await condition():
            await asyncio.sleep(0.05)


def jobs_on_every_shard(layout: Layout, per_shard: int) -> list[str]:
    jobs: list[str] = []
    counts = [0] * layout.shards
    while min(counts) < per_shard:
        job = str(uuid.uuid4())
        shard = layout.shard_of(job)
        if counts[shard] < per_shard:
            counts[shard] += 1
            jobs.append(job)
    return jobs


async def all_done(redis: AsyncRedis, layout: Layout, jobs: list[str], version: int) -> bool:
    for job in jobs:
        view = await read_snapshot(redis, layout, job)
        if view is None or view.version < version:
            return False
    return True


async def readers_of(redis: AsyncRedis, layout: Layout, shard: int) -> set[str]:
    """Consumers of the snapshot group that ever read the shard's log."""
    consumers = await redis.xinfo_consumers(layout.keys(shard).events, SNAPSHOT_GROUP)
    return {c["name"] for c in consumers}


async def test_a_second_copy_waits_for_the_leases_and_takes_over_when_the_first_stops(
    redis_client: AsyncRedis, layout: Layout
) -> None:
    store = EventStore(redis_client, layout, schemas.registry)
    first = SnapshotService(redis_client, layout, options=FAST, lease=HELD, consumer="first")
    second = SnapshotService(redis_client, layout, options=FAST, lease=HELD, consumer="second")
    first_task = asyncio.create_task(first.run())
    second_task: asyncio.Task[None] | None = None
    try:
        async def first_holds_all() -> bool:
            return first.held == set(range(layout.shards))

        await until(first_holds_all)
        second_task = asyncio.create_task(second.run())
        scan = full_scan("alice")
        jobs = jobs_on_every_shard(layout, per_shard=3)
        for job in jobs:
            await append(store, job, "alice", *scan[:5])
        await until(lambda: all_done(redis_client, layout, jobs, 5))
        assert second.held == set()
        for shard in range(layout.shards):
            assert await readers_of(redis_client, layout, shard) == {"first"}, (shard, [layout.shard_of(j) for j in jobs], first.held)

        first.stop()
        await asyncio.wait_for(first_task, 15)

        async def second_holds_all() -> bool:
            return second.held == set(range(layout.shards))

        await until(second_holds_all)
        for job in jobs:
            await append(store, job, "alice", *scan[5:])
        await until(lambda: all_done(redis_client, layout, jobs, len(scan)))
        for shard in range(layout.shards):
            assert await readers_of(redis_client, layout, shard) == {"first", "second"}
    finally:
        first.stop()
        second.stop()
        await asyncio.gather(first_task, *([second_task] if second_task else []),
                             return_exceptions=True)


async def test_a_copy_that_stops_renewing_loses_its_shards_to_the_other(
    redis_client: AsyncRedis, layout: Layout
) -> None:
    """A stuck owner (no renewals) loses every shard after the lease TTL."""
    store = EventStore(redis_client, layout, schemas.registry)
    stuck = SnapshotService(redis_client, layout, options=FAST, lease=LEASE, consumer="stuck")
    for shard in range(layout.shards):  # leases taken, then never renewed nor served
        assert await RedisLease(redis_client, layout.keys(shard).lease(SNAPSHOT_GROUP),
                                stuck.consumer, LEASE.ttl_ms).acquire()
    other = SnapshotService(redis_client, layout, options=FAST, lease=LEASE, consumer="other")
    task = asyncio.create_task(other.run())
    try:
        job = str(uuid.uuid4())
        await append(store, job, "alice", *full_scan("alice"))
        await until(lambda: all_done(redis_client, layout, [job], 10))

        async def holds_every_shard() -> bool:  # the job's shard first, the others a moment later
            return other.held == set(range(layout.shards))

        await until(holds_every_shard)
    finally:
        other.stop()
        await asyncio.wait_for(task, 15)
