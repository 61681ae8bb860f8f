"""Leases: each (projection, shard) has one owner; a dead owner's shards are taken over."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from eventstore.store import EventStore
from projections.builtin import select
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.runner import ProjectorService, finish
from projections.synthetic import SyntheticLog
from projections.worker import ProjectorOptions
from tests.projections.helpers import describe, load, verify_all, wait_caught_up

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

FAST = ProjectorOptions(batch_size=200, block_ms=200, lease_retry_s=0.1)


def service(side: ReadSide) -> ProjectorService:
    metrics = ProjectionMetrics.create(CollectorRegistry())
    return ProjectorService(side, select(), options=FAST, metrics=metrics)


async def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_two_processes_share_the_shards_and_survive_one_dying(
    side: ReadSide, store: EventStore
) -> None:
    log = SyntheticLog(side.registry)
    await load(store, log, 300)
    slots = {(p.name, s) for p in select() for s in range(side.layout.shards)}
    first, second = service(side), service(side)
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    try:
        overlaps: list[set[tuple[str, int]]] = []

        def spread() -> bool:
            overlaps.append(first.owned & second.owned)  # sampled all along: never shared
            return first.owned | second.owned == slots and len(first.owned) == len(slots) // 2

        await wait_for(spread)
        assert not any(overlaps)  # each shard had at most one owner at every moment
        await load(store, log, 200)
        await wait_caught_up(side)

        # The first process dies: its lock session ends, the second takes its shards over.
        await finish(tasks[0])
        await wait_for(lambda: second.owned == slots)
        await load(store, log, 200)
        await wait_caught_up(side)
    finally:
        await first.stop()
        await second.stop()

    reports = await verify_all(side)
    assert all(r.clean for r in reports), describe(reports)
    async with side.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM scans") == 700
        # Points count each completed scan once, whichever process applied it.
        assert await conn.fetchval("SELECT sum(points) FROM users") == 10 * 665


async def test_lost_lock_session_stops_the_projectors_until_leases_return(
    side: ReadSide, store: EventStore
) -> None:
    log = SyntheticLog(side.registry)
    await load(store, log, 50)
    only = service(side)
    task = asyncio.create_task(only.run())
    try:
        await wait_for(lambda: len(only.owned) == len(select()) * side.layout.shards)
        # Kill the lock session from the server side, as a Postgres restart would.
        async with side.pool.acquire() as conn:
            killed = await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'eco2-leases' AND datname = current_database()"
                " AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory')"
            )
        assert killed >= 1
        sessions = only.leases.sessions
        await wait_for(lambda: only.leases.sessions > sessions)
        await wait_for(lambda: len(only.owned) == len(select()) * side.layout.shards)
        await load(store, log, 50)
        await wait_caught_up(side)
    finally:
        await only.stop()
    assert task.done()
    reports = await verify_all(side)
    assert all(r.clean for r in reports), describe(reports)
