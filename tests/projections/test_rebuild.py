"""Rebuild while scans keep arriving: readers never see an empty or shrinking model, the live
projector follows the switch, and verify is clean afterwards; verify notices tampering."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
from typing import IO

import pytest
from prometheus_client import CollectorRegistry

from eventstore.store import EventStore
from projections import parallel
from projections.builtin import get_projection, select
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.rebuild import rebuild, rebuild_stale
from projections.replay import heads, replay
from projections.runner import ProjectorService
from projections.status import projection_status
from projections.synthetic import SyntheticLog
from projections.verify import verify
from projections.worker import ProjectorOptions
from readmodels import versions
from tests.projections.helpers import describe, load, verify_all, wait_caught_up

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

# One snapshot of every reader-visible model; each figure only grows as events are applied.
TOTALS = """SELECT (SELECT count(*) FROM scans),
                  (SELECT count(*) FROM scans WHERE status = 'completed'),
                  (SELECT count(*) FROM users),
                  (SELECT coalesce(sum(points), 0) FROM users),
                  (SELECT count(*) FROM character_ownership),
                  (SELECT coalesce(sum(count), 0) FROM stats_scans_daily),
                  (SELECT coalesce(sum(count), 0) FROM stats_rewards)"""


async def test_rebuild_every_projection_while_scans_keep_arriving(
    side: ReadSide, store: EventStore
) -> None:
    log = SyntheticLog(side.registry)
    await load(store, log, 600)
    options = ProjectorOptions(batch_size=100, block_ms=100, lease_retry_s=0.2)
    live = ProjectorService(
        side, select(), options=options, metrics=ProjectionMetrics.create(CollectorRegistry())
    )
    live_task = asyncio.create_task(live.run())
    await wait_caught_up(side)

    writing = True
    seen: list[tuple[int, ...]] = []

    async def writer() -> None:
        while writing:
            await load(store, log, 5)
            await asyncio.sleep(0.01)

    async def reader() -> None:
        while True:
            async with side.pool.acquire() as conn:
                seen.append(tuple(await conn.fetchrow(TOTALS)))
            await asyncio.sleep(0.005)

    tasks = [asyncio.create_task(writer()), asyncio.create_task(reader())]
    try:
        for projection in select():
            # The scans bulk replay runs in this process and a worker, the others here only.
            workers = 2 if projection.name == "scans" else 1
            report = await rebuild(side, projection, batch_size=300, workers=workers)
            assert (report.previous, report.version) == (1, 2)
        writing = False
        await tasks[0]
        await wait_caught_up(side)  # on the new versions: the live projector followed the switch
    finally:
        writing = False
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await live.stop()
    assert live_task.done()

    assert len(seen) > 50
    assert all(value > 0 for value in seen[0])
    for before, after in itertools.pairwise(seen):
        assert all(a >= b for a, b in zip(after, before, strict=True)), (before, after)
    async with side.pool.acquire() as conn:
        for projection in select():
            assert await versions.active_version(conn, projection.name) == 2
            states = {v.version: v.state for v in await versions.list_versions(conn, projection.name)}
            assert states == {1: "dropped", 2: "active"}
    reports = await verify_all(side)
    assert all(r.clean for r in reports), describe(reports)


async def test_verify_reports_tampered_rows(side: ReadSide, store: EventStore) -> None:
    await load(store, SyntheticLog(side.registry), 60)
    users, scans = get_projection("users"), get_projection("scans")
    targets = await heads(side)
    for projection in (users, scans):
        await replay(side, projection, "v1", targets)
    assert (await verify(side, scans)).clean
    async with side.pool.acquire() as conn:
        job = await conn.fetchval("SELECT job_id FROM scans ORDER BY job_id LIMIT 1")
        await conn.execute("UPDATE scans_v1 SET progress = 3 WHERE job_id = $1", job)
        await conn.execute("DELETE FROM users_v1 WHERE user_id = 'user-7'")
    report = await verify(side, scans)
    assert not report.clean
    assert report.tables[0].different == [(job,)]
    report = await verify(side, users)
    assert not report.clean
    assert report.tables[0].only_rebuilt == [("user-7",)]
    assert report.tables[0].live_rows == report.tables[0].rebuilt_rows - 1


async def test_projections_an_older_release_built_are_rebuilt_once(
    side: ReadSide, store: EventStore
) -> None:
    """What ``eco2 up`` does after an upgrade: only the projection whose tables older code
    built is rebuilt, from the log, and afterwards nothing is stale."""
    await load(store, SyntheticLog(side.registry), 40)
    scans = get_projection("scans")
    async with side.pool.acquire() as conn:
        await conn.execute(
            "UPDATE projection_versions SET code_version = code_version - 1 WHERE name = 'scans'"
        )
        assert (await projection_status(conn, scans)).stale
    reports = await rebuild_stale(side, select())
    assert [(r.name, r.previous, r.version) for r in reports] == [("scans", 1, 2)]
    async with side.pool.acquire() as conn:
        assert not any([(await projection_status(conn, p)).stale for p in select()])
        assert await conn.fetchval("SELECT count(*) FROM scans") == 40
    assert await rebuild_stale(side, select()) == []
    assert (await verify(side, scans)).clean


async def test_a_failing_replay_worker_fails_the_rebuild(side: ReadSide, store: EventStore) -> None:
    await load(store, SyntheticLog(side.registry), 100)
    # Not a built-in projection: this process replays its shards, the worker cannot load it.
    stranger = dataclasses.replace(get_projection("scans"), name="not-built-in")
    with pytest.raises(RuntimeError, match="replay worker failed"):
        await rebuild(side, stranger, batch_size=50, workers=2)


async def test_a_replay_worker_that_dies_fails_the_rebuild(
    side: ReadSide, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed before it reports anything (no error line): its exit status is the
    error, and this process's own replay stops with it."""
    await load(store, SyntheticLog(side.registry), 100)

    async def killed(spec: parallel.WorkerSpec, out: IO[str]) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(parallel, "_work", killed)  # the fork runs this process's code
    with pytest.raises(RuntimeError, match="replay worker failed: exit status -9"):
        await rebuild(side, get_projection("scans"), batch_size=50, workers=2)

