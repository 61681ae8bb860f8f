"""The archive tier: archiving, trimming with its floors, merged reads, the cold-append path."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from eventstore.archive import Archive, ArchiveError
from eventstore.archiver import ShardArchiver, archive_now
from eventstore.dlq import DeadLetterFilter, DeadLetters
from eventstore.errors import ConcurrencyConflict
from eventstore.groups import ConsumerGroup
from eventstore.keys import Layout
from eventstore.store import ANY, EventStore
from eventstore.trim import RetentionPolicy
from schemas.envelope import Envelope
from tests.readmodels.pg import migrated_pool

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

NOW = RetentionPolicy(hot_retention_s=0, idempotency_window_s=0)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as pool:
        yield pool


@pytest.fixture
def cold_store(redis_client: aioredis.Redis, layout: Layout, pool: asyncpg.Pool) -> EventStore:
    return EventStore(redis_client, layout, archive=Archive(pool))


def event(agg: str, n: int = 0, **data: object) -> Envelope:
    return Envelope(aggregate_id=agg, aggregate_type="thing", type="thing_happened",
                    data={"n": n, **data})


async def schema(pool: asyncpg.Pool) -> str:
    async with pool.acquire() as conn:
        return str(await conn.fetchval("SELECT current_schema()"))


async def cycle(store: EventStore, pool: asyncpg.Pool, policy: RetentionPolicy = NOW) -> None:
    await archive_now(store.redis, pool, await schema(pool), store.layout, policy)


async def busy_shard(store: EventStore, at_least: int) -> int:
    for shard in range(store.layout.shards):
        if await store.head(shard) >= at_least:
            return shard
    raise AssertionError("no shard has enough events")


async def fill(store: EventStore, aggregates: int, each: int) -> list[str]:
    ids = [f"agg-{uuid.uuid4().hex[:8]}" for _ in range(aggregates)]
    for agg in ids:
        for n in range(each):
            await store.append([event(agg, n)], expected_version=n)
    return ids


async def test_archive_then_trim_keeps_every_read_equal(cold_store: EventStore, pool) -> None:
    store, redis = cold_store, cold_store.redis
    ids = await fill(store, 12, 5)
    before = {a: await store.read_aggregate(a) for a in ids}
    logs = {s: await store.read_shard(s, limit=10_000) for s in range(store.layout.shards)}
    await cycle(store, pool)
    for keys in store.layout.all():
        assert await redis.xlen(keys.events) == 0
        assert not await redis.keys(keys.aggregate("*"))  # every stream removed whole
        assert await redis.hlen(keys.event_ids) == 0
    for agg in ids:
        assert await store.read_aggregate(agg) == before[agg]
        assert await store.read_aggregate(agg, after_version=2) == before[agg][2:]
        assert await store.read_aggregate(agg, limit=2) == before[agg][:2]
        assert await store.version_of(agg) == 5
    for shard, entries in logs.items():
        assert await store.read_shard(shard, limit=10_000) == entries
        assert await store.read_shard(shard, after_position=3, limit=2) == entries[3:5]


async def test_positions_stay_contiguous_and_appends_continue(cold_store: EventStore, pool) -> None:
    store = cold_store
    ids = await fill(store, 8, 3)
    await cycle(store, pool)
    # The archived aggregate's stream is gone: its version comes from the archive.
    agg = ids[0]
    result = await store.append([event(agg, 3)], expected_version=3)
    assert result.last_version == 4
    with pytest.raises(ConcurrencyConflict):
        await store.append([event(ids[1], 9)], expected_version=0)
    with pytest.raises(ConcurrencyConflict):
        await store.append([event(ids[2], 9)], expected_version=1)
    any_result = await store.append([event(ids[3], 9)], expected_version=ANY)
    assert any_result.last_version == 4
    fresh = await store.append([event("brand-new", 0)], expected_version=0)
    assert fresh.last_version == 1
    await cycle(store, pool)
    for shard in range(store.layout.shards):
        positions: list[int | None] = []
        while batch := await store.read_shard(
            shard, after_position=len(positions), limit=10_000
        ):
            positions += [e.position for e in batch]
        assert positions == list(range(1, await store.head(shard) + 1))
    assert [e.version for e in await store.read_aggregate(agg)] == [1, 2, 3, 4]


async def test_a_partly_trimmed_stream_merges_both_tiers(cold_store: EventStore, pool) -> None:
    store = cold_store
    (agg,) = await fill(store, 1, 4)
    await cycle(store, pool)
    await store.append([event(agg, 4)], expected_version=4)
    await store.append([event(agg, 5)], expected_version=5)
    history = await store.read_aggregate(agg)
    assert [e.version for e in history] == [1, 2, 3, 4, 5, 6]
    assert [e.data["n"] for e in history] == [0, 1, 2, 3, 4, 5]
    assert [e.version for e in await store.read_aggregate(agg, after_version=3)] == [4, 5, 6]


class CountingArchive(Archive):
    """The real archive, counting its queries (every read goes through ``_fetch``)."""

    queries = 0

    async def _fetch(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        self.queries += 1
        return await super()._fetch(sql, *args)


async def test_reads_after_a_hot_version_leave_the_archive_alone(
    cold_store: EventStore, pool
) -> None:
    archive = CountingArchive(pool)
    store = EventStore(cold_store.redis, cold_store.layout, archive=archive)
    (agg,) = await fill(store, 1, 4)
    await cycle(store, pool)
    await store.append([event(agg, 4), event(agg, 5)], expected_version=4)
    archive.queries = 0
    assert [e.version for e in await store.read_aggregate(agg, after_version=5)] == [6]
    assert await store.read_aggregate(agg, after_version=6) == []  # nothing newer: v6 is hot
    assert [e.version for e in await store.read_aggregate(agg, after_version=4, limit=1)] == [5]
    assert archive.queries == 0
    assert [e.version for e in await store.read_aggregate(agg, after_version=3)] == [4, 5, 6]
    assert archive.queries == 1  # version 4 is only archived


async def test_retention_keeps_young_events(cold_store: EventStore, pool) -> None:
    store = cold_store
    await fill(store, 6, 2)
    await cycle(store, pool, RetentionPolicy(hot_retention_s=3600))
    for keys in store.layout.all():
        assert await store.redis.xlen(keys.events) == await store.head(keys.shard)
    await cycle(store, pool, RetentionPolicy(hot_retention_s=3600, hot_max_events=1))
    for keys in store.layout.all():
        assert await store.redis.xlen(keys.events) == min(1, await store.head(keys.shard))


@pytest.mark.parametrize("name", ["reward", "snapshot"])  # a handler group; the snapshot projector
async def test_a_group_that_is_behind_holds_trimming_back(
    cold_store: EventStore, pool, name: str
) -> None:
    store = cold_store
    group = ConsumerGroup(store.redis, store.layout, group=name, source="events", consumer="c1")
    await group.ensure(range(store.layout.shards))
    await fill(store, 8, 2)
    shard = await busy_shard(store, 2)
    delivered = await group.read(shard, count=2, block_ms=10)
    await group.ack(delivered[0].stream, delivered[0].entry_id)  # position 1 done, 2 pending
    await cycle(store, pool)
    keys = store.layout.keys(shard)
    first = await store.redis.xrange(keys.events, count=1)
    assert first[0][0] == "2-0"  # the pending entry (and all after it) stay
    await group.ack(delivered[1].stream, delivered[1].entry_id)
    await cycle(store, pool)
    first = await store.redis.xrange(keys.events, count=1)
    head = await store.head(shard)
    assert (first[0][0] if first else None) == ("3-0" if head >= 3 else None), (first, head)


async def test_a_dead_letter_holds_trimming_back(cold_store: EventStore, pool) -> None:
    store = cold_store
    group = ConsumerGroup(store.redis, store.layout, group="g", source="events", consumer="c1")
    await group.ensure(range(store.layout.shards))
    await fill(store, 8, 2)
    shard = await busy_shard(store, 2)
    (first,) = await group.read(shard, count=1, block_ms=10)
    await group.dead_letter(first, "boom", attempts=5)
    rest = await group.read(shard, count=1000, block_ms=10)
    await group.ack(rest[0].stream, *[d.entry_id for d in rest])
    await cycle(store, pool)
    keys = store.layout.keys(shard)
    assert (await store.redis.xrange(keys.events, count=1))[0][0] == "1-0"
    letters = await DeadLetters(store.redis, store.layout).find()
    assert letters[0].entry == "1-0"
    await DeadLetters(store.redis, store.layout).purge(DeadLetterFilter())
    await cycle(store, pool)
    assert await store.redis.xlen(keys.events) == 0


async def test_a_projector_checkpoint_holds_trimming_back(cold_store: EventStore, pool) -> None:
    store = cold_store
    await fill(store, 8, 2)
    shard = await busy_shard(store, 2)

    async def projector(s: int) -> int | None:
        return 1 if s == shard else None

    await archive_now(store.redis, pool, await schema(pool), store.layout, NOW,
                      [("projectors", projector)])
    keys = store.layout.keys(shard)
    assert (await store.redis.xrange(keys.events, count=1))[0][0] == "2-0"


async def test_commands_and_retry_streams_lose_acknowledged_entries(
    cold_store: EventStore, pool
) -> None:
    store = cold_store
    keys = store.layout.keys_for("job-1")
    group = ConsumerGroup(store.redis, store.layout, group="w", source="commands", consumer="c")
    await group.ensure([keys.shard])
    for i in range(3):
        await store.append_command(
            Envelope(aggregate_id="job-1", type="do_it", data={"i": i}), idempotency_key=f"k{i}"
        )
    got = await group.read(keys.shard, count=10, block_ms=10)
    await group.retry(got[0], "transient")  # acks the original, queues a retry entry
    await group.ack(got[1].stream, got[1].entry_id)  # got[2] stays pending
    await cycle(store, pool)
    assert [i for i, _ in await store.redis.xrange(keys.commands)] == [got[2].entry_id]
    assert await store.redis.xlen(keys.retry("w")) == 1  # not yet delivered
    (again,) = await group.read(keys.shard, count=10, block_ms=10)
    await group.ack(again.stream, again.entry_id)
    await cycle(store, pool)
    assert await store.redis.xlen(keys.retry("w")) == 0


async def test_the_idempotency_window_is_kept(cold_store: EventStore, pool) -> None:
    store = cold_store
    agg = "agg-idem"
    first = event(agg, 0)
    await store.append([first], expected_version=0)
    await cycle(store, pool, RetentionPolicy(hot_retention_s=0, idempotency_window_s=3600))
    keys = store.layout.keys_for(agg)
    assert await store.redis.xlen(keys.events) == 0
    again = await store.append([first], expected_version=0)  # a retry inside the window
    assert again.duplicate and again.records[0].position == 1
    await cycle(store, pool, NOW)
    assert await store.redis.hlen(keys.event_ids) == 0


async def test_the_archiver_is_idempotent_and_keeps_the_envelope(cold_store: EventStore, pool) -> None:
    store = cold_store
    await fill(store, 4, 3)
    awkward = "tab\there\nnew line \\ back\\slash \r 한글 \"quoted\" \\N"
    for agg in ("weird-1", "weird-2", "weird-3", "weird-4"):
        await store.append([Envelope(aggregate_id=agg, aggregate_type="t\tx", type="odd",
                                     data={"s": awkward, "raw": "\t\n"},
                                     metadata={"user_id": "u\\1", "trace": {"k": "\n"}})],
                           expected_version=0)
    total, odd = 0, 0
    for shard in range(store.layout.shards):
        raw = await store.redis.xrange(store.layout.keys(shard).events)
        odd += sum(f["type"] == "odd" for _, f in raw)
        archiver = ShardArchiver(store.redis, pool, store.layout, shard, RetentionPolicy())
        assert await archiver.archive() == (0, len(raw))
        assert await archiver.archive() == (len(raw), len(raw))
        archived = await Archive(pool).log_entries(shard, after=0, upto=10**9, limit=10**6)
        assert archived == raw  # every field's text, byte for byte
        total += len(raw)
    assert odd == 4
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM event_log") == total
        assert time.time() - await conn.fetchval("SELECT max(ts) FROM event_log") < 600


async def test_an_entry_that_is_no_envelope_stops_archiving_loudly(
    cold_store: EventStore, pool
) -> None:
    store = cold_store
    (agg,) = await fill(store, 1, 2)
    keys = store.layout.keys_for(agg)
    await store.redis.xadd(keys.events, {"garbage": "yes"}, id="3-0")
    await store.redis.set(keys.head, 3)
    archiver = ShardArchiver(store.redis, pool, store.layout, keys.shard, NOW)
    with pytest.raises(ArchiveError, match="not an envelope"):
        await archiver.cycle()
    assert await store.redis.xlen(keys.events) == 3  # nothing archived, nothing trimmed
    assert (await Archive(pool).checkpoints()).get(keys.shard, (0, None))[0] == 0
