"""Group commit: concurrent appends share one script call per shard, never their outcome."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from eventstore.errors import ConcurrencyConflict, PartialDuplicate
from eventstore.keys import Layout
from eventstore.store import ANY, AppendResult, EventStore
from schemas.envelope import Envelope
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis


def added(aggregate_id: str, name: str = "x") -> Envelope:
    return test_registry.envelope(
        ItemAdded(name=name), aggregate_id=aggregate_id, aggregate_type="cart"
    )


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    return EventStore(redis_client, layout, test_registry)


async def test_mixed_outcomes_in_one_group_each_reach_their_own_caller(
    store: EventStore, redis_client: aioredis.Redis
) -> None:
    fresh, existing, retried, partial = (str(uuid.uuid4()) for _ in range(4))
    await store.append([added(existing)], expected_version=0)
    original = [added(retried, "r1"), added(retried, "r2")]
    first = await store.append(original, expected_version=0)
    known = added(partial, "p1")
    await store.append([known], expected_version=0)
    before = store._group.round_trips

    outcomes = await asyncio.gather(
        store.append([added(fresh, "f1")], expected_version=0),
        store.append([added(existing, "stale")], expected_version=0),  # conflict
        store.append(original, expected_version=0),  # idempotent retry
        store.append([known, added(partial, "p2")], expected_version=1),  # half known
        store.append([added(fresh, "f2")], expected_version=1),  # sees f1 of this group
        store.append([added(existing, "ok")], expected_version=ANY),
        return_exceptions=True,
    )

    assert store._group.round_trips - before == 1  # one round trip for all six
    ok_fresh, conflict, retry, half, after, anywhere = outcomes
    assert isinstance(ok_fresh, AppendResult) and ok_fresh.last_version == 1
    assert isinstance(conflict, ConcurrencyConflict)
    assert (conflict.current, conflict.expected) == (1, 0)
    assert isinstance(retry, AppendResult) and retry.duplicate
    assert retry.records == first.records
    assert isinstance(half, PartialDuplicate)
    assert isinstance(after, AppendResult) and after.last_version == 2
    assert isinstance(anywhere, AppendResult) and anywhere.last_version == 2
    assert [e.data["name"] for e in await store.read_aggregate(fresh)] == ["f1", "f2"]
    assert [e.data["name"] for e in await store.read_aggregate(existing)] == ["x", "ok"]
    assert [e.data["name"] for e in await store.read_aggregate(partial)] == ["p1"]


async def test_positions_stay_contiguous_under_many_concurrent_groups(store: EventStore) -> None:
    aggregates = [str(uuid.uuid4()) for _ in range(300)]
    results = await asyncio.gather(
        *(store.append([added(a), added(a)], expected_version=0) for a in aggregates)
    )
    for shard in range(store.layout.shards):
        positions = sorted(
            r.position for res in results for r in res.records if r.shard == shard
        )
        assert positions == list(range(1, len(positions) + 1))
        log = await store.read_shard(shard, limit=10_000)
        assert [e.position for e in log] == positions
        assert await store.head(shard) == len(positions)


async def test_a_lost_script_cache_is_reloaded_and_nothing_is_written_twice(
    store: EventStore, redis_client: aioredis.Redis
) -> None:
    agg = str(uuid.uuid4())
    await store.append([added(agg, "a")], expected_version=0)
    await redis_client.script_flush()  # what a Redis restart does to the script cache
    second = await asyncio.gather(
        store.append([added(agg, "b")], expected_version=1),
        store.append([added(str(uuid.uuid4()))], expected_version=0),
    )
    assert second[0].last_version == 2
    assert [e.data["name"] for e in await store.read_aggregate(agg)] == ["a", "b"]


async def test_the_same_events_twice_in_one_group_are_written_once(store: EventStore) -> None:
    agg = str(uuid.uuid4())
    events = [added(agg, "a"), added(agg, "b")]
    first, second = await asyncio.gather(  # one group: the second sees what the first wrote
        store.append(events, expected_version=0), store.append(events, expected_version=0)
    )
    assert not first.duplicate and second.duplicate
    assert second.records == first.records
    assert [e.data["name"] for e in await store.read_aggregate(agg)] == ["a", "b"]


async def test_creations_in_one_group_see_each_other(
    store: EventStore, redis_client: aioredis.Redis
) -> None:
    """Appends that expect new aggregates are looked up together (one EXISTS); one that
    creates an aggregate another append of the group created first still conflicts."""
    twice, once, other = (str(uuid.uuid4()) for _ in range(3))
    before = store._group.round_trips
    outcomes = await asyncio.gather(
        store.append([added(twice, "first")], expected_version=0),
        store.append([added(once)], expected_version=0),
        store.append([added(twice, "second")], expected_version=0),  # conflict
        store.append([added(other)], expected_version=0),
        store.append([added(twice, "third")], expected_version=1),
        return_exceptions=True,
    )
    assert store._group.round_trips - before == 1
    first, created, conflict, also_created, third = outcomes
    assert isinstance(first, AppendResult) and first.last_version == 1
    assert isinstance(created, AppendResult) and created.last_version == 1
    assert isinstance(also_created, AppendResult) and also_created.last_version == 1
    assert isinstance(conflict, ConcurrencyConflict)
    assert (conflict.current, conflict.expected) == (1, 0)
    assert isinstance(third, AppendResult) and third.last_version == 2
    assert [e.data["name"] for e in await store.read_aggregate(twice)] == ["first", "third"]
