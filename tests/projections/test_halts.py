"""A projector never skips an event on its own.

An event the projection cannot apply (rows Postgres refuses, a type this release does not know)
stops that shard at the event — a recorded halt (/ops), a metric — while the other shards go
on; an operator's recorded skip (or a release that knows the type) lets it continue, and a
rebuild makes the same choice. Before, such an event was skipped and its checkpoint moved past
it for good (the scan/chat row silently missing, also after a rebuild).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

import schemas
from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.store import EventStore
from gateway.web.admin_status import projection_figures
from infra.cli_projections import projections_app
from projections.builtin import get_projection
from projections.commit import load_checkpoints
from projections.context import ReadSide
from projections.halts import Halt, decide_skip, list_halts
from projections.metrics import ProjectionMetrics
from projections.rebuild import rebuild
from projections.replay import heads
from projections.runner import ProjectorService
from projections.synthetic import SyntheticLog
from projections.verify import verify
from projections.worker import ProjectorOptions
from schemas.registry import Event, MessageRegistry
from schemas.scan import SCAN_JOB, ScanQueued
from tests.projections.helpers import lag, load
from tests.readmodels.pg import new_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

FAST = ProjectorOptions(batch_size=50, block_ms=100, lease_retry_s=0.1, halt_retry_s=0.1)


@contextlib.asynccontextmanager
async def projecting(side: ReadSide, metrics: ProjectionMetrics) -> AsyncIterator[None]:
    service = ProjectorService(side, [get_projection("scans")], options=FAST, metrics=metrics)
    task = asyncio.create_task(service.run())
    try:
        yield
    finally:
        await service.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[misc]
        assert time.monotonic() < deadline, f"not reached in time: {what}"
        await asyncio.sleep(0.05)


async def halts(side: ReadSide) -> list[Halt]:
    async with side.pool.acquire() as conn:
        return await list_halts(conn, "scans")


def halted_gauge(registry: CollectorRegistry, shard: int) -> float | None:
    return registry.get_sample_value(
        "eco2_projection_halted", {"projection": "scans", "shard": str(shard)}
    )


async def test_unstorable_event_stops_its_shard_until_an_operator_skips_it(
    side: ReadSide, store: EventStore, layout: Layout
) -> None:
    await load(store, SyntheticLog(side.registry), 10)
    job = str(uuid.uuid4())
    bad = schemas.registry.envelope(  # accepted by an older gateway: NUL in a stored field
        ScanQueued(user_id="u-nul", image_url="https://cdn.example.org/a\x00.png"),
        aggregate_id=job, aggregate_type=SCAN_JOB,
    )
    [result] = await store.append_batch([([bad], 0)])
    shard, position = layout.shard_of(job), result.records[0].position
    await load(store, SyntheticLog(side.registry), 10)  # the log goes on after it

    registry = CollectorRegistry()
    async with projecting(side, ProjectionMetrics.create(registry)):
        async def stopped() -> bool:
            return bool(await halts(side))

        await eventually(stopped, "the shard's projector stops at the bad event")
        [halt] = await halts(side)
        assert (halt.shard, halt.position, halt.kind) == (shard, position, "database")
        assert halt.event_id == str(bad.id) and halt.event_type == "scan.queued"
        assert halted_gauge(registry, shard) == 1
        log_heads = await heads(side)
        async with side.pool.acquire() as conn:
            figures = await projection_figures(side.pool, log_heads)
            done = await load_checkpoints(conn, "scans", "v1")
        [scans] = [p for p in figures if p["name"] == "scans"]
        assert [h["position"] for h in scans["halted"]] == [position]
        assert "eco2 projections skip scans" in scans["halted"][0]["skip_command"]

        async def others_caught_up() -> bool:
            async with side.pool.acquire() as conn:
                done.update(await load_checkpoints(conn, "scans", "v1"))
            return all(done[s] == h for s, h in log_heads.items() if s != shard)

        await eventually(others_caught_up, "the other shards keep going")
        assert done[shard] == position - 1  # nothing past it on its shard

        async with side.pool.acquire() as conn:
            decision = await decide_skip(
                conn, LogReader(side.redis, layout), "scans", shard, position,
                reason="NUL in image_url; the scan was never shown", by="test-operator",
            )
        assert decision.event_id == str(bad.id) and decision.decided_by == "test-operator"

        async def passed() -> bool:  # the gauge falls just after the halt's row is cleared
            return (
                not await halts(side)
                and await lag(side, ["scans"]) == 0
                and halted_gauge(registry, shard) == 0
            )

        await eventually(passed, "the projector passes the decided event, the gauge falls")

    async with side.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM scans WHERE job_id = $1", job) == 0
    report = await rebuild(side, get_projection("scans"))  # the same choice, from position 0
    assert report.skipped == 1
    assert (await verify(side, get_projection("scans"))).clean


def newer_release(registry: MessageRegistry) -> tuple[MessageRegistry, type[Event]]:
    """This release's registry plus one event type only the next release has."""
    newer = MessageRegistry()
    newer._by_name.update(registry._by_name)
    newer._names.update(registry._names)
    newer._upcasters.update(registry._upcasters)

    @newer.register("scan.rated")
    class ScanRated(Event):
        stars: int

    return newer, ScanRated


async def test_unknown_type_waits_for_a_release_that_knows_it(
    side: ReadSide, store: EventStore, layout: Layout, redis_client: aioredis.Redis
) -> None:
    """A rolling deploy: the next release's worker writes a type this projector does not know.
    It is neither skipped for good nor passed: the shard waits, visibly, and the next
    release's projector continues from exactly there."""
    newer, scan_rated = newer_release(schemas.registry)
    await load(store, SyntheticLog(side.registry), 5)
    job = str(uuid.uuid4())
    rated = newer.envelope(scan_rated(stars=5), aggregate_id=job, aggregate_type=SCAN_JOB)
    [result] = await EventStore(redis_client, layout, newer).append_batch([([rated], 0)])
    shard, position = layout.shard_of(job), result.records[0].position
    await load(store, SyntheticLog(side.registry), 5)

    registry = CollectorRegistry()
    metrics = ProjectionMetrics.create(registry)
    async with projecting(side, metrics):
        async def waiting() -> bool:
            return bool(await halts(side))

        await eventually(waiting, "the old release's projector waits at the unknown type")
        [halt] = await halts(side)
        assert (halt.shard, halt.position, halt.kind) == (shard, position, "unknown")
        assert "scan.rated" in halt.error
        await asyncio.sleep(0.5)  # it keeps waiting: looking again does not pass it
        async with side.pool.acquire() as conn:
            assert (await load_checkpoints(conn, "scans", "v1"))[shard] == position - 1
        assert halted_gauge(registry, shard) == 1

    async with projecting(replace(side, registry=newer), metrics):
        async def continued() -> bool:
            return not await halts(side) and await lag(side, ["scans"]) == 0

        await eventually(continued, "the next release's projector continues")
    assert (await verify(replace(side, registry=newer), get_projection("scans"))).clean


def test_cli_skip_names_the_event_and_records_who_when_why(
    redis_url: str, database_url: str, layout: Layout, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    schema = new_schema()
    for name, value in {
        "REDIS_URL": redis_url, "DATABASE_URL": database_url, "ECO2_NAMESPACE": layout.namespace,
        "ECO2_SHARDS": str(layout.shards), "ECO2_DB_SCHEMA": schema,
        "ECO2_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    job = str(uuid.uuid4())
    envelope = schemas.registry.envelope(
        ScanQueued(user_id="u", image_url="https://cdn.example.org/a.png"),
        aggregate_id=job, aggregate_type=SCAN_JOB,
    )

    async def append() -> int:
        redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        try:
            [result] = await EventStore(redis, layout, schemas.registry).append_batch(
                [([envelope], 0)]
            )
            return result.records[0].position
        finally:
            await redis.aclose()

    position = asyncio.run(append())
    shard = layout.shard_of(job)
    cli = CliRunner()
    args = ["skip", "scans", "--shard", str(shard), "--position", str(position)]
    done = cli.invoke(projections_app, [*args, "--reason", "bad image url", "--by", "kim"])
    assert done.exit_code == 0, done.output
    assert f"scan.queued {envelope.id}" in done.output and "decided by kim" in done.output
    missing = cli.invoke(
        projections_app,
        ["skip", "scans", "--shard", str(shard), "--position", "999999", "--reason", "x"],
    )
    assert missing.exit_code == 1 and "no event at position 999999" in missing.output
    listed = cli.invoke(projections_app, ["skips", "scans"])
    assert listed.exit_code == 0, listed.output
    assert all(word in listed.output for word in ("image", "kim", str(position)))
