"""The event store against a real Redis: atomicity, idempotency, order, gap-freedom."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from eventstore.errors import ConcurrencyConflict, InvalidAppend, PartialDuplicate
from eventstore.keys import Layout
from eventstore.store import ANY, EventStore
from schemas.envelope import Envelope
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis


def added(aggregate_id: str, name: str = "x", **kw: object) -> Envelope:
    return test_registry.envelope(
        ItemAdded(name=name), aggregate_id=aggregate_id, aggregate_type="cart", **kw
    )


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    return EventStore(redis_client, layout, test_registry)


async def test_append_assigns_versions_and_positions(store: EventStore) -> None:
    agg = str(uuid.uuid4())
    first = await store.append([added(agg, "a"), added(agg, "b")], expected_version=0)
    second = await store.append([added(agg, "c")], expected_version=2)
    assert [r.version for r in first.records + second.records] == [1, 2, 3]
    assert [r.position for r in first.records + second.records] == [1, 2, 3]
    events = await store.read_aggregate(agg)
    assert [e.data["name"] for e in events] == ["a", "b", "c"]
    assert [e.version for e in events] == [1, 2, 3]
    assert [e.position for e in events] == [1, 2, 3]
    assert [e.version for e in await store.read_aggregate(agg, after_version=1)] == [2, 3]
    assert await store.version_of(agg) == 3


async def test_wrong_expected_version_conflicts_and_writes_nothing(store: EventStore) -> None:
    agg = str(uuid.uuid4())
    await store.append([added(agg)], expected_version=0)
    with pytest.raises(ConcurrencyConflict) as info:
        await store.append([added(agg), added(agg)], expected_version=0)
    assert (info.value.current, info.value.expected) == (1, 0)
    assert len(await store.read_aggregate(agg)) == 1
    assert await store.head(store.layout.shard_of(agg)) == 1


async def test_sixteen_writers_one_winner_per_version(store: EventStore) -> None:
    agg = str(uuid.uuid4())

    async def writer(n: int) -> list[int]:
        won = []
        for _ in range(20):
            version = await store.version_of(agg)
            try:
                result = await store.append([added(agg, f"w{n}")], expected_version=version)
            except ConcurrencyConflict:
                continue
            won.append(result.last_version)
        return won

    wins = await asyncio.gather(*(writer(n) for n in range(16)))
    versions = sorted(v for won in wins for v in won)
    assert versions == list(range(1, len(versions) + 1))  # each version won exactly once
    assert len(versions) >= 20
    events = await store.read_aggregate(agg)
    assert [e.version for e in events] == versions


async def test_retry_with_same_ids_returns_original_positions(store: EventStore) -> None:
    agg = str(uuid.uuid4())
    events = [added(agg, "a"), added(agg, "b")]
    first = await store.append(events, expected_version=0)
    again = await store.append(events, expected_version=0)  # stale expected: still a retry
    assert again.duplicate and not first.duplicate
    assert again.records == first.records
    assert len(await store.read_aggregate(agg)) == 2
    with pytest.raises(PartialDuplicate):
        await store.append([events[0], added(agg, "new")], expected_version=2)
    assert len(await store.read_aggregate(agg)) == 2


async def test_positions_contiguous_in_commit_order_under_concurrency(store: EventStore) -> None:
    aggregates = [str(uuid.uuid4()) for _ in range(200)]

    async def writer(mine: list[str]) -> None:
        for agg in mine:
            await store.append([added(agg, "a"), added(agg, "b")], expected_version=0)
            await store.append([added(agg, "c")], expected_version=2)

    await asyncio.gather(*(writer(aggregates[i::8]) for i in range(8)))
    for shard in range(store.layout.shards):
        log = await store.read_shard(shard, limit=10_000)
        assert [e.position for e in log] == list(range(1, len(log) + 1))
        assert await store.head(shard) == len(log)
        seen: dict[str, int] = {}
        for e in log:  # within an aggregate, log order is version order
            assert e.version == seen.get(e.aggregate_id, 0) + 1
            seen[e.aggregate_id] = e.version
    assert sum([await store.head(s) for s in range(4)]) == 600


async def test_invalid_event_rejected_before_any_write(store: EventStore) -> None:
    agg = str(uuid.uuid4())
    bad = Envelope(aggregate_id=agg, type="test.item_added", data={"quantity": "lots"})
    with pytest.raises(InvalidAppend, match="name"):
        await store.append([added(agg), bad], expected_version=0)
    unknown = Envelope(aggregate_id=agg, type="test.unheard_of", data={})
    with pytest.raises(InvalidAppend, match="unknown message type"):
        await store.append([unknown], expected_version=0)
    with pytest.raises(InvalidAppend):
        await store.append([added(agg), added("other")], expected_version=0)
    assert await store.read_aggregate(agg) == []
    assert await store.head(store.layout.shard_of(agg)) == 0


async def test_any_version_and_batched_pipeline(store: EventStore) -> None:
    aggs = [str(uuid.uuid4()) for _ in range(50)]
    results = await store.append_batch([([added(a), added(a)], 0) for a in aggs])
    assert all(r.last_version == 2 for r in results)
    more = await store.append([added(aggs[0])], expected_version=ANY)
    assert more.last_version == 3


async def test_tail_waits_for_new_entries(store: EventStore) -> None:
    agg = str(uuid.uuid4())
    shard = store.layout.shard_of(agg)
    tail = store.tail(shard, block_ms=100)

    async def first_batch() -> list[Envelope]:
        return await anext(tail)

    waiting = asyncio.create_task(first_batch())
    await asyncio.sleep(0.05)
    await store.append([added(agg, "late")], expected_version=0)
    batch = await asyncio.wait_for(waiting, 5)
    assert [e.data["name"] for e in batch] == ["late"]
    await tail.aclose()


async def test_command_idempotency_key(store: EventStore) -> None:
    job = str(uuid.uuid4())
    cmd = Envelope(aggregate_id=job, type="test.noop", data={})
    first = await store.append_command(cmd, idempotency_key="k1")
    again = await store.append_command(
        Envelope(aggregate_id=job, type="test.noop", data={}), idempotency_key="k1"
    )
    assert again.duplicate and again.entry_id == first.entry_id
    assert again.command_id == str(cmd.id) and again.aggregate_id == job
    keys = store.layout.keys_for(job)
    assert await store.redis.xlen(keys.commands) == 1
