"""Applying batches: changes and checkpoint commit together, replays are no-ops, and an event
that cannot be applied stops the shard at it (never stepped over) unless an operator's skip
names it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg
import pytest
import redis.asyncio as aioredis

from eventstore.keys import Layout
from eventstore.store import EventStore
from projections.builtin import get_projection
from projections.changes import Changes
from projections.commit import (
    CheckpointMoved,
    VersionSwitched,
    apply_batch,
    ensure_checkpoints,
    load_checkpoints,
)
from projections.context import ReadSide
from projections.halts import EventRejected, SkipDecision, record_skip
from projections.projection import Projection
from projections.reading import ShardReader, position_of
from projections.synthetic import SyntheticLog
from readmodels import tables
from schemas.envelope import Envelope
from schemas.scan import ScanCompleted, ScanQueued
from tests.projections.helpers import load

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def reader_for(side: ReadSide, projection: Projection) -> ShardReader:
    return ShardReader(
        side.redis, side.layout, side.registry, projection.wire_names(side.registry)
    )


async def busiest_shard(side: ReadSide) -> int:
    reader = reader_for(side, get_projection("scans"))
    sizes = {s: await reader.head(s) for s in range(side.layout.shards)}
    return max(sizes, key=lambda s: sizes[s])


async def test_replayed_batch_is_a_no_op(side: ReadSide, store: EventStore) -> None:
    await load(store, SyntheticLog(side.registry, users=3), 40)
    users = get_projection("users")
    reader = reader_for(side, users)
    async with side.pool.acquire() as conn:
        await ensure_checkpoints(conn, "users", "v1", range(side.layout.shards))
        for shard in range(side.layout.shards):
            batch = await reader.read(shard, 0, 10_000)
            await apply_batch(conn, users, reader, "v1", batch, live_version=1)
        points = await conn.fetchval("SELECT sum(points) FROM users")
        assert points == 10 * 38  # 40 jobs, one in twenty fails
        # The same batch again, as a second owner (or a retry after a lost reply) would send it.
        shard = await busiest_shard(side)
        batch = await reader.read(shard, 0, 10_000)
        with pytest.raises(CheckpointMoved):
            await apply_batch(conn, users, reader, "v1", batch, live_version=1)
        assert await conn.fetchval("SELECT sum(points) FROM users") == points
        positions = await load_checkpoints(conn, "users", "v1")
        assert positions[shard] == batch.last_position


async def test_failed_batch_leaves_rows_and_checkpoint_untouched(
    side: ReadSide, store: EventStore
) -> None:
    await load(store, SyntheticLog(side.registry), 20)
    broken = Projection("scans", 1, tables.SCANS)

    @broken.on(ScanQueued)
    def _queued(changes: Changes, event: ScanQueued, envelope: Envelope) -> None:
        changes.set("scans", envelope.aggregate_id, user_id=event.user_id)

    @broken.on(ScanCompleted)
    def _completed(changes: Changes, event: ScanCompleted, envelope: Envelope) -> None:
        changes.execute("UPDATE no_such_table SET x = 1")  # a bug in our SQL, not bad data

    shard = await busiest_shard(side)
    reader = reader_for(side, broken)
    async with side.pool.acquire() as conn:
        await ensure_checkpoints(conn, "scans", "v1", [shard])
        batch = await reader.read(shard, 0, 10_000)
        with pytest.raises(asyncpg.UndefinedTableError):
            await apply_batch(conn, broken, reader, "v1", batch, live_version=1)
        assert await conn.fetchval("SELECT count(*) FROM scans") == 0
        assert (await load_checkpoints(conn, "scans", "v1"))[shard] == 0


async def test_bad_event_data_stops_the_shard_at_the_event(
    side: ReadSide, store: EventStore
) -> None:
    """Before, the event was skipped and the checkpoint moved past it (the job's row lost)."""
    await load(store, SyntheticLog(side.registry), 30)
    poisoned = Projection("scans", 1, tables.SCANS)
    victims: list[str] = []

    @poisoned.on(ScanQueued)
    def _queued(changes: Changes, event: ScanQueued, envelope: Envelope) -> None:
        # 2**40 does not fit the integer column: the database rejects this one job's row.
        progress = 2**40 if envelope.aggregate_id in victims else 0
        changes.set("scans", envelope.aggregate_id, user_id=event.user_id, progress=progress)

    shard = await busiest_shard(side)
    reader = reader_for(side, poisoned)
    async with side.pool.acquire() as conn:
        await ensure_checkpoints(conn, "scans", "v1", [shard])
        batch = await reader.read(shard, 0, 10_000)
        queued_jobs = [(e, f) for e, f in batch.entries if f["type"] == "scan.queued"]
        victim_entry, victim = queued_jobs[len(queued_jobs) // 2]
        victims.append(victim["agg"])
        with pytest.raises(EventRejected) as caught:
            await apply_batch(conn, poisoned, reader, "v1", batch, live_version=1)
        rejected = caught.value
        assert (rejected.kind, rejected.position) == ("database", position_of(victim_entry))
        assert rejected.event_id == victim["id"] and rejected.event_type == "scan.queued"
        assert "eco2 projections skip scans --shard" in str(rejected)
        # Everything before it is applied; the checkpoint stays just before it.
        assert (await load_checkpoints(conn, "scans", "v1"))[shard] == rejected.position - 1
        assert await conn.fetchval("SELECT count(*) FROM scans") == len(queued_jobs) // 2

        # The operator's decision, naming the event: now it is passed, and counted.
        await record_skip(conn, SkipDecision(
            "scans", shard, rejected.position, victim["id"], "scan.queued", "test", "tester",
            datetime.now(UTC),
        ))
        rest = await reader.read(shard, rejected.position - 1, 10_000)
        outcome = await apply_batch(conn, poisoned, reader, "v1", rest, live_version=1)
        assert outcome.counts.skipped == 1 and outcome.position == batch.last_position
        assert await conn.fetchval("SELECT count(*) FROM scans") == len(queued_jobs) - 1


async def test_unknown_and_malformed_entries_stop_the_shard(
    side: ReadSide, redis_client: aioredis.Redis, layout: Layout, store: EventStore
) -> None:
    """Before, these were counted and passed for good (a newer release's events lost)."""
    await load(store, SyntheticLog(side.registry), 3)
    shard = 0
    keys = layout.keys(shard)
    head = int(await redis_client.get(keys.head) or 0)
    future = {"id": "00000000-0000-0000-0000-000000000001", "agg": "j", "atype": "scan_job",
              "ver": "1", "type": "scan.from_the_future", "sv": "1", "data": "{}", "meta": "{}",
              "ts": "1.0"}
    newer = {**future, "id": "00000000-0000-0000-0000-000000000002", "type": "scan.queued",
             "sv": "99"}
    garbage = {"hello": "world"}
    invalid = {**future, "id": "00000000-0000-0000-0000-000000000004", "type": "scan.queued",
               "data": json.dumps({"user_id": 5})}
    entries = [future, newer, garbage, invalid]
    for offset, fields in enumerate(entries, start=1):
        await redis_client.xadd(keys.events, fields, id=f"{head + offset}-0")
    await redis_client.set(keys.head, head + 4)

    scans = get_projection("scans")
    reader = reader_for(side, scans)
    kinds = []
    async with side.pool.acquire() as conn:
        await ensure_checkpoints(conn, "scans", "v1", [shard])
        position = 0
        for offset, fields in enumerate(entries, start=1):
            batch = await reader.read(shard, position, 10_000)
            with pytest.raises(EventRejected) as caught:
                await apply_batch(conn, scans, reader, "v1", batch, live_version=1)
            assert caught.value.position == head + offset
            assert (await load_checkpoints(conn, "scans", "v1"))[shard] == head + offset - 1
            kinds.append(caught.value.kind)
            await record_skip(conn, SkipDecision(
                "scans", shard, head + offset, fields.get("id", ""), fields.get("type", ""),
                "test", "tester", datetime.now(UTC),
            ))
            position = head + offset - 1
        assert kinds == ["unknown", "unknown", "malformed", "malformed"]
        # The garbage entry has no id: a skip naming "" passes it; all four are now decided.
        batch = await reader.read(shard, position, 10_000)
        outcome = await apply_batch(conn, scans, reader, "v1", batch, live_version=1)
        assert outcome.counts.skipped == 1 and outcome.position == head + 4


async def test_live_batch_on_a_switched_version_is_refused(
    side: ReadSide, store: EventStore
) -> None:
    await load(store, SyntheticLog(side.registry), 5)
    scans = get_projection("scans")
    reader = reader_for(side, scans)
    shard = await busiest_shard(side)
    async with side.pool.acquire() as conn:
        await ensure_checkpoints(conn, "scans", "v1", [shard])
        batch = await reader.read(shard, 0, 10_000)
        with pytest.raises(VersionSwitched):
            await apply_batch(conn, scans, reader, "v1", batch, live_version=7)
        assert (await load_checkpoints(conn, "scans", "v1"))[shard] == 0
