"""The archiver process: it stops when cancelled, whatever one of its steps did with the
cancellation, and it survives its tables or its schema being dropped under it."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from eventstore.archive import Archive
from eventstore.archiver import ArchiverOptions, ArchiverService
from eventstore.store import EventStore
from eventstore.trim import FloorSource, RetentionPolicy
from readmodels.db import quote_ident
from tests.eventstore.test_archive import NOW, cold_store, fill, pool, schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
__all__ = ["cold_store", "pool"]  # fixtures shared with test_archive

FAST = ArchiverOptions(interval_s=0.01, lease_retry_s=0.01)
KEEP = RetentionPolicy(hot_retention_s=3600)  # nothing is trimmed: the log can be archived again


async def started(
    store: EventStore, pool: asyncpg.Pool, dsn: str, policy: RetentionPolicy,
    floors: list[tuple[str, FloorSource]] | None = None,
) -> tuple[ArchiverService, asyncio.Task[None]]:
    service = ArchiverService(store.redis, pool, dsn, await schema(pool), store.layout, policy,
                              floors or [], FAST)
    return service, asyncio.create_task(service.run())


async def stopped(task: asyncio.Task[None]) -> bool:
    """Cancel the archiver; True once it has ended (a guard against a hang, not a timing)."""
    task.cancel()
    await asyncio.wait({task}, timeout=60)
    return task.done()


async def archived_everything(store: EventStore, pool: asyncpg.Pool) -> bool:
    checkpoints = await Archive(pool).checkpoints()
    for shard in range(store.layout.shards):
        if checkpoints.get(shard, (0, None))[0] != await store.head(shard):
            return False
    return True


async def wait_for_archive(
    store: EventStore, pool: asyncpg.Pool, service: ArchiverService
) -> None:
    """Until every shard is archived up to its head and its last cycle succeeded."""
    deadline = time.monotonic() + 60
    while service.errors or not await archived_everything(store, pool):
        assert time.monotonic() < deadline, "the archiver did not catch up"
        await asyncio.sleep(0.01)


async def test_the_archiver_stops_when_a_step_swallowed_the_cancellation(
    cold_store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    await fill(cold_store, 4, 2)
    entered = asyncio.Event()

    async def swallowing(shard: int) -> int | None:
        # What redis-py's ``wait_for`` does on Python 3.11 when a reply races the cancel.
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass
        return None

    _, task = await started(cold_store, pool, database_url, NOW, [("swallowing", swallowing)])
    await entered.wait()
    assert await stopped(task), "the archiver did not stop"
    assert task.cancelled()


async def test_tables_dropped_under_a_running_archiver_are_created_and_filled_again(
    cold_store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    service, task = await started(cold_store, pool, database_url, KEEP)
    try:
        await fill(cold_store, 4, 2)
        await wait_for_archive(cold_store, pool, service)
        async with pool.acquire() as conn:
            await conn.execute("DROP TABLE event_log, event_log_archived CASCADE")
        await fill(cold_store, 4, 2)
        await wait_for_archive(cold_store, pool, service)
        async with pool.acquire() as conn:
            rows = await conn.fetchval("SELECT count(*) FROM event_log")
        heads = [await cold_store.head(s) for s in range(cold_store.layout.shards)]
        assert rows == sum(heads) == 16
    finally:
        assert await stopped(task), "the archiver did not stop"


async def test_a_dropped_schema_is_reported_and_the_archiver_still_stops(
    cold_store: EventStore, pool: asyncpg.Pool, database_url: str
) -> None:
    service, task = await started(cold_store, pool, database_url, KEEP)
    try:
        await fill(cold_store, 2, 1)
        await wait_for_archive(cold_store, pool, service)
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {quote_ident(await schema(pool))} CASCADE")
        deadline = time.monotonic() + 60
        while not any("missing" in e for e in service.errors.values()):
            assert time.monotonic() < deadline, "the missing schema was not reported"
            await asyncio.sleep(0.01)
    finally:
        assert await stopped(task), "the archiver did not stop"
