"""A shard moves to another master while writers append: nothing lost, nothing doubled.

The shard's hash tag is one slot; ``move_slot`` migrates it live (IMPORTING/MIGRATING, MIGRATE,
SETSLOT NODE) like ``redis-cli --cluster reshard``. Writers meanwhile see ASK/TRYAGAIN
redirections or failed calls and retry with the same event ids, as every caller of the store
does: the append script's idempotency makes a retry of an append that had landed a no-op.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.crc import key_slot
from redis.exceptions import RedisError

from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from eventstore.store import ANY, EventStore
from schemas.envelope import Envelope
from tests.eventstore.messages import ItemAdded, test_registry
from tests.redis_cluster import cluster

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def added(aggregate_id: str, name: str) -> Envelope:
    return test_registry.envelope(
        ItemAdded(name=name), aggregate_id=aggregate_id, aggregate_type="cart"
    )


async def test_moving_a_shards_slot_during_appends_loses_and_duplicates_nothing(
    redis_cluster_url: str, namespace: str
) -> None:
    local = cluster()
    if local is None:
        pytest.skip("needs the session's own cluster (ECO2_TEST_CLUSTER_URL names another)")
    layout = Layout(namespace, 1)  # one shard: every write goes to the slot that moves
    shard = layout.keys(0)
    slot = key_slot(shard.events.encode())
    redis = await open_redis(redis_cluster_url, decode_responses=True)
    store = EventStore(redis, layout, test_registry)
    aggregates = [str(uuid.uuid4()) for _ in range(8)]
    written: list[str] = []
    retries = 0
    stop = asyncio.Event()

    async def writer(aggregate_id: str) -> None:
        nonlocal retries
        n = 0
        while not stop.is_set() or n < 20:
            event = added(aggregate_id, f"{aggregate_id[:6]}-{n}")
            while True:  # retry the SAME event until the store confirms it
                try:
                    await store.append([event], expected_version=ANY)
                    break
                except RedisError:
                    retries += 1
                    await asyncio.sleep(0.01)
            written.append(event.id)
            n += 1

    try:
        writers = [asyncio.create_task(writer(a)) for a in aggregates]
        while len(written) < 200:
            await asyncio.sleep(0.01)
        _, source_port = local.slot_owner_port(slot)
        target = next(p for p in local.master_ports if p != source_port)
        started_at = len(written)
        await asyncio.to_thread(local.move_slot, slot, target)
        moved_at = len(written)
        assert moved_at > started_at  # writers kept appending while the slot moved
        while len(written) < moved_at + 200:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*writers)

        assert local.slot_owner_port(slot)[1] == target
        log = await store.read_shard(0, limit=100_000)
        ids = [e.id for e in log]
        assert len(ids) == len(set(ids))  # nothing twice
        assert set(ids) == set(written)  # nothing lost
        assert [e.position for e in log] == list(range(1, len(log) + 1))  # no gaps
        assert await store.head(0) == len(log)
        for aggregate_id in aggregates:
            versions = [e.version for e in await store.read_aggregate(aggregate_id)]
            assert versions == list(range(1, len(versions) + 1))
    finally:
        stop.set()
        await redis.aclose()
