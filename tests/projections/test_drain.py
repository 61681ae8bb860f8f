"""SIGTERM's drain of a projector process (``ProjectorService.drain``): it takes no more shards,
lets each projector end after the batch it applies, frees its leases at once, and whatever it
did not apply is applied by the next owner exactly once."""

from __future__ import annotations

import asyncio

import pytest

from eventstore.store import EventStore
from projections.builtin import select
from projections.context import ReadSide
from projections.synthetic import SyntheticLog
from tests.projections.helpers import describe, load, verify_all, wait_caught_up
from tests.projections.test_leases import service, wait_for

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


async def test_drain_frees_the_shards_and_loses_nothing(side: ReadSide, store: EventStore) -> None:
    log = SyntheticLog(side.registry)
    await load(store, log, 200)
    slots = {(p.name, s) for p in select() for s in range(side.layout.shards)}
    leaving = service(side)
    task = asyncio.create_task(leaving.run())
    successor = service(side)
    try:
        await wait_for(lambda: leaving.owned == slots)
        await load(store, log, 300)  # being applied while the drain starts
        await asyncio.wait_for(leaving.drain(grace_s=10), 15)
        assert task.done() and leaving.owned == set()
        # Its leases are free at once: another process takes every shard and finishes the log.
        successor_task = asyncio.create_task(successor.run())
        await wait_for(lambda: successor.owned == slots)
        await wait_caught_up(side)
    finally:
        await leaving.stop()
        await successor.stop()
    assert successor_task.done()
    reports = await verify_all(side)
    assert all(r.clean for r in reports), describe(reports)
    async with side.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM scans") == 500
