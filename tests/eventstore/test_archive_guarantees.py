"""Guarantees of the archive tier: nothing un-archived is ever trimmed (a property test with
random trims, consumers and concurrent appends), positions stay contiguous across tiers, and a
``kill -9`` of the archiver at any moment loses and duplicates nothing."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventstore.archive import Archive
from eventstore.archiver import archive_now
from eventstore.groups import ConsumerGroup
from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from eventstore.store import ANY, EventStore
from eventstore.trim import RetentionPolicy
from readmodels.db import create_pool, quote_ident
from schemas.envelope import Envelope

pytestmark = [pytest.mark.redis, pytest.mark.postgres]



REPO = Path(__file__).resolve().parents[2]
SHARDS = 2

appends = st.tuples(st.just("append"), st.integers(0, 5), st.integers(1, 4))
reads = st.tuples(st.just("read"), st.integers(0, SHARDS - 1), st.integers(1, 6))
acks = st.tuples(st.just("ack"), st.integers(0, SHARDS - 1), st.integers(1, 6))
trims = st.tuples(st.just("trim"), st.sampled_from([0, 1, 3, 1000]), st.integers(0, 4))
operations = st.lists(st.one_of(appends, reads, acks, trims), min_size=3, max_size=25)


class Scenario:
    def __init__(self, redis: aioredis.Redis, pool: asyncpg.Pool, schema: str) -> None:
        self.layout = Layout(f"t{uuid.uuid4().hex[:12]}", SHARDS)
        self.store = EventStore(redis, self.layout, archive=Archive(pool))
        self.pool, self.schema = pool, schema
        self.group = ConsumerGroup(redis, self.layout, group="g", source="events", consumer="c")
        self.written: dict[str, dict[int, str]] = {}  # aggregate -> version -> event id
        self.pending: dict[int, list[str]] = {s: [] for s in range(SHARDS)}

    async def append(self, aggregate: int, count: int) -> None:
        agg = f"agg-{aggregate}"
        events = [Envelope(aggregate_id=agg, type="t", data={"i": i}) for i in range(count)]
        result = await self.store.append(events, expected_version=ANY)
        versions = self.written.setdefault(agg, {})
        for record, envelope in zip(result.records, events, strict=True):
            versions[record.version] = str(envelope.id)

    async def step(self, op: tuple[str, int, int]) -> None:
        kind, a, b = op
        if kind == "append":
            await self.append(a, b)
        elif kind == "read":
            got = await self.group.read(a, count=b, block_ms=1)
            self.pending[a] += [d.entry_id for d in got]
        elif kind == "ack" and self.pending[a]:
            done, self.pending[a] = self.pending[a][:b], self.pending[a][b:]
            await self.group.ack(self.layout.keys(a).events, *done)
        elif kind == "trim":
            policy = RetentionPolicy(hot_retention_s=0, hot_max_events=a, idempotency_window_s=0)
            # Appends race with the archive+trim cycle.
            racing = [self.append(random.randrange(6), 2) for _ in range(b)]
            await asyncio.gather(
                archive_now(self.store.redis, self.pool, self.schema, self.layout, policy),
                *racing,
            )

    async def check(self) -> None:
        redis = self.store.redis
        for keys in self.layout.all():
            head = await self.store.head(keys.shard)
            floor = int(await redis.get(keys.floor) or 0)
            archived = (await Archive(self.pool).checkpoints()).get(keys.shard, (0, None))[0]
            assert floor <= archived, "trimmed beyond the archive"
            hot = [int(i.split("-")[0]) for i, _ in await redis.xrange(keys.events)]
            assert hot == list(range(floor + 1, head + 1)), "the hot tier is not the tail"
            for entry_id in self.pending[keys.shard]:  # pending entries are never trimmed
                assert int(entry_id.split("-")[0]) > floor
            positions: list[int] = []
            while batch := await self.store.read_shard(
                keys.shard, after_position=positions[-1] if positions else 0, limit=7
            ):
                positions += [e.position or 0 for e in batch]
            assert positions == list(range(1, head + 1))
        for agg, versions in self.written.items():
            ids = [versions[v] for v in sorted(versions)]
            assert sorted(versions) == list(range(1, len(versions) + 1))
            assert [str(e.id) for e in await self.store.read_aggregate(agg)] == ids
            assert await self.store.version_of(agg) == len(ids)


async def _run(ops: list[tuple[str, int, int]], redis_url: str, database_url: str) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    redis = await open_redis(redis_url, decode_responses=True)
    pool = await create_pool(database_url, schema, max_size=4)
    scenario = Scenario(redis, pool, schema)
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
        await scenario.group.ensure(range(SHARDS))
        for op in ops:
            await scenario.step(op)
            await scenario.check()
        await scenario.step(("trim", 0, 0))
        await scenario.check()
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{{{scenario.layout.namespace}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {quote_ident(schema)} CASCADE")
        await pool.close()


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_nothing_unarchived_or_still_needed_is_ever_trimmed(
    ops: list[tuple[str, int, int]], redis_url: str, database_url: str
) -> None:
    asyncio.run(_run(ops, redis_url, database_url))


def _archiver(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "archive", "run"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


async def _archived(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        try:
            return int(await conn.fetchval("SELECT coalesce(sum(position), 0) FROM event_log_archived"))
        except asyncpg.UndefinedTableError:
            return 0


@pytest.mark.slow
@pytest.mark.timeout(1200)  # eight restarts of a process; each is bounded by its own stall check
async def test_kill_9_of_the_archiver_loses_and_duplicates_nothing(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str, database_url: str,
    tmp_path: Path,
) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    pool = await create_pool(database_url, schema, max_size=8)
    async with pool.acquire() as conn:
        await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
    store = EventStore(redis_client, layout, archive=Archive(pool))
    env = {
        **os.environ, "REDIS_URL": redis_url, "DATABASE_URL": database_url,
        "ECO2_NAMESPACE": layout.namespace, "ECO2_SHARDS": str(layout.shards),
        "ECO2_DB_SCHEMA": schema, "ECO2_HOT_RETENTION_S": "0",
        "ECO2_IDEMPOTENCY_WINDOW_S": "0", "ECO2_ARCHIVE_INTERVAL_S": "0.01",
        "ECO2_DATA_DIR": str(tmp_path / "data"),
    }
    written: list[str] = []
    stop = asyncio.Event()

    async def writer() -> None:
        n = 0
        while not stop.is_set():
            events = [Envelope(aggregate_id=f"a{n % 50}", type="t", data={"n": n})
                      for _ in range(20)]
            await store.append(events, expected_version=ANY)
            written.extend(str(e.id) for e in events)
            n += 1
            await asyncio.sleep(0)

    log = tmp_path / "archiver.log"
    task = asyncio.create_task(writer())
    kills = 0
    try:
        process = _archiver(env, log)
        archived = 0
        while kills < 8:
            # Wait until this process is at work, then kill it at a random moment of its
            # cycles: mid-COPY, mid-trim or in between. A restart is slow on a loaded machine
            # (25 s seen at load 10): only a process that archives nothing for 120 s fails.
            started = time.monotonic()
            while (now := await _archived(pool)) <= archived:
                assert time.monotonic() - started < 120, log.read_text()[-2000:]
                assert process.poll() is None, log.read_text()[-2000:]
                await asyncio.sleep(0.01)
            archived = now
            await asyncio.sleep(random.uniform(0, 0.2))
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            kills += 1
            process = _archiver(env, log)
        stop.set()
        await task
        await asyncio.sleep(0.5)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        await archive_now(redis_client, pool, schema, layout,
                          RetentionPolicy(hot_retention_s=0, idempotency_window_s=0))
        assert kills == 8
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT shard, position, event_id::text AS id FROM event_log")
        ids = [r["id"] for r in rows]
        assert len(ids) == len(set(ids)) == len(written), log.read_text()[-2000:]
        assert set(ids) == set(written)
        for shard in range(layout.shards):
            positions = sorted(r["position"] for r in rows if r["shard"] == shard)
            assert positions == list(range(1, await store.head(shard) + 1))
            assert await redis_client.xlen(layout.keys(shard).events) == 0
    finally:
        stop.set()
        if process.poll() is None:
            process.kill()
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {quote_ident(schema)} CASCADE")
        await pool.close()
