"""The log's one reading API: follow (the tail every follower uses), documents, figures.

A follower never steps over an event: across the archive floor it reads on from the archive,
and a trim that overtakes a caught-up follower is noticed (positions are contiguous) and
either filled from the archive or raised.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from eventstore.archive import Archive, ArchiveError, Entry
from eventstore.errors import HistoryGap
from eventstore.groups import ConsumerGroup
from eventstore.keys import Layout
from eventstore.merged import number_of
from eventstore.reading import LogReader, ShardBatch, position_of
from eventstore.store import EventStore
from tests.eventstore.test_archive import cycle, event
from tests.readmodels.pg import migrated_pool

pytestmark = pytest.mark.redis


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as pool:
        yield pool


async def append_to(store: EventStore, shard: int, count: int) -> None:
    """``count`` events on ``shard`` (fresh aggregates that land there)."""
    while count:
        agg = f"agg-{uuid.uuid4().hex[:8]}"
        if store.layout.shard_of(agg) == shard:
            await store.append([event(agg)], expected_version=0)
            count -= 1


async def collect(
    follow: AsyncIterator[list[Entry]], upto: int, *, idle_ok: bool = False
) -> list[int]:
    """Positions the follower yields until it has passed ``upto``."""
    positions: list[int] = []
    while not positions or positions[-1] < upto:
        entries = await asyncio.wait_for(anext(follow), 10)
        assert entries or idle_ok, "an idle tick while entries were waiting"
        positions += [position_of(entry_id) for entry_id, _ in entries]
    return positions


async def test_follow_waits_then_delivers_in_order(
    redis_client: aioredis.Redis, layout: Layout
) -> None:
    store = EventStore(redis_client, layout)
    reader = LogReader(redis_client, layout)
    await append_to(store, 1, 3)
    follow = reader.follow_shard(1, after=1, batch=2, block_ms=50)
    assert await collect(follow, 3) == [2, 3]
    assert await anext(follow) == []  # nothing new within block_ms: an idle tick
    waiting = asyncio.create_task(collect(follow, 5, idle_ok=True))
    await append_to(store, 1, 2)
    assert await asyncio.wait_for(waiting, 10) == [4, 5]
    await follow.aclose()


async def test_follow_of_several_shards_tags_each_batch(
    redis_client: aioredis.Redis, layout: Layout
) -> None:
    store = EventStore(redis_client, layout)
    await append_to(store, 0, 2)
    await append_to(store, 3, 1)
    follow = LogReader(redis_client, layout).follow({0: 0, 3: 0}, block_ms=50)
    first = await anext(follow)
    assert [(b.shard, [position_of(e) for e, _ in b.entries]) for b in first] == [
        (0, [1, 2]), (3, [1])
    ]
    assert await anext(follow) == []
    await append_to(store, 3, 1)
    found: list[ShardBatch] = []
    while not found:
        found = await asyncio.wait_for(anext(follow), 10)
    assert [(b.shard, b.last_position) for b in found] == [(3, 2)]
    await follow.aclose()


@pytest.mark.postgres
async def test_follow_reads_the_archive_below_the_floor(
    redis_client: aioredis.Redis, layout: Layout, pool: asyncpg.Pool
) -> None:
    store = EventStore(redis_client, layout, archive=Archive(pool))
    await append_to(store, 2, 5)
    await cycle(store, pool)
    await append_to(store, 2, 2)
    follow = LogReader(redis_client, layout, Archive(pool)).follow_shard(2, batch=3, block_ms=50)
    assert await collect(follow, 7) == list(range(1, 8))
    await follow.aclose()


@pytest.mark.postgres
@pytest.mark.parametrize("wired", [True, False], ids=["archive", "no-archive"])
async def test_a_trim_that_overtakes_a_follower_is_never_skipped_over(
    redis_client: aioredis.Redis, layout: Layout, pool: asyncpg.Pool, wired: bool
) -> None:
    store = EventStore(redis_client, layout, archive=Archive(pool))
    await append_to(store, 2, 2)
    reader = LogReader(redis_client, layout, Archive(pool) if wired else None)
    follow = reader.follow_shard(2, after=2, block_ms=50)
    assert await anext(follow) == []  # caught up: the next read is a blocking one
    await append_to(store, 2, 3)  # positions 3..5, archived and trimmed behind its back
    await cycle(store, pool)
    await append_to(store, 2, 1)  # position 6: the blocking read sees only this one
    if wired:
        assert await collect(follow, 6) == [3, 4, 5, 6]
    else:
        with pytest.raises(ArchiveError, match="trimmed"):
            await collect(follow, 6)
    await follow.aclose()


async def test_documents_live_beside_the_stream_under_their_owners_role(
    redis_client: aioredis.Redis, layout: Layout
) -> None:
    store = EventStore(redis_client, layout)
    reader = LogReader(redis_client, layout)
    job = f"job-{uuid.uuid4().hex[:8]}"
    empty = await reader.glance(job, ("state", "owner"))
    assert empty.first is None and empty.documents == {"state": None, "owner": None}
    await redis_client.set(layout.keys_for(job).document("owner", job), "alice")
    await store.append([event(job, 7)], expected_version=0)
    seen = await reader.glance(job, ("state", "owner"))
    assert seen.first is not None and seen.first[1]["agg"] == job
    assert seen.documents == {"state": None, "owner": "alice"}
    assert await reader.document(job, "owner") == "alice"
    for role in ("agg", "events", "lease", "", "a:b"):
        with pytest.raises(ValueError):
            layout.keys_for(job).document(role, job)


@pytest.mark.postgres
async def test_an_aggregate_is_read_with_its_documents_from_either_tier(
    redis_client: aioredis.Redis, layout: Layout, pool: asyncpg.Pool
) -> None:
    """A stream's opening reads all of a job's entries and its documents in one go, the
    versions trimmed from Redis coming from the archive."""
    store = EventStore(redis_client, layout, archive=Archive(pool))
    reader = store.log
    agg = f"job-{uuid.uuid4().hex[:8]}"
    assert await reader.aggregate_with(agg, ("state", "owner")) == (
        [], {"state": None, "owner": None})
    for n in range(3):
        await store.append([event(agg, n)], expected_version=n)
    await redis_client.set(layout.keys_for(agg).document("owner", agg), "alice")
    entries, documents = await reader.aggregate_with(agg, ("state", "owner"))
    assert [number_of(i) for i, _ in entries] == [1, 2, 3]
    assert documents == {"state": None, "owner": "alice"}
    await cycle(store, pool)  # versions 1..3 archived and trimmed from Redis
    await store.append([event(agg, 3)], expected_version=3)
    entries, documents = await reader.aggregate_with(agg, ("owner",))
    assert [number_of(i) for i, _ in entries] == [1, 2, 3, 4]
    assert [f["agg"] for _, f in entries] == [agg] * 4 and documents == {"owner": "alice"}
    # Without an archive versions 1..3 are out of reach: refused, never stepped over.
    bare = LogReader(redis_client, layout)
    for read in (bare.aggregate_with(agg, ("owner",)), bare.aggregate(agg)):
        with pytest.raises(HistoryGap, match="version 4 is the first in Redis"):
            await read
    assert [number_of(i) for i, _ in await bare.aggregate(agg, after=3)] == [4]


async def test_figures_count_heads_streams_and_group_lag(
    redis_client: aioredis.Redis, layout: Layout
) -> None:
    store = EventStore(redis_client, layout)
    await append_to(store, 1, 3)
    watchers = ConsumerGroup(redis_client, layout, group="watchers", source="events", consumer="c")
    await watchers.ensure([1])
    figures = await LogReader(redis_client, layout).figures()
    assert [(s.shard, s.head, s.events) for s in figures.shards] == [
        (0, 0, 0), (1, 3, 3), (2, 0, 0), (3, 0, 0)
    ]
    (group,) = figures.groups
    assert (group.stream, group.group, group.shard, group.pending) == ("events", "watchers", 1, 0)
    assert group.lag == 3 and group.retry_backlog == 0
