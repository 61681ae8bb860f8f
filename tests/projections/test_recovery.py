"""Crashes and outages: after recovery the read models equal a fresh rebuild.

- a projector process killed with SIGKILL in the middle of its batches, then restarted;
- Postgres, then Redis, unreachable for a while under load: the projectors back off and
  resume by themselves.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from eventstore.keys import Layout
from eventstore.store import EventStore
from projections.builtin import select
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.runner import ProjectorService
from projections.synthetic import SyntheticLog
from projections.worker import ProjectorOptions
from readmodels.db import create_pool
from tests.projections.helpers import describe, lag, load, verify_all, wait_caught_up
from tests.projections.proxy import TcpProxy, through

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]


def projector_process(
    side: ReadSide, redis_url: str, database_url: str, layout: Layout, log_file: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "ECO2_NAMESPACE": layout.namespace,
        "ECO2_SHARDS": str(layout.shards),
        "ECO2_DB_SCHEMA": side.schema,
        "ECO2_DATA_DIR": str(log_file.parent / "data"),
    }
    command = [sys.executable, "-m", "infra.cli_projections", "run", "--batch-size", "40",
               "--lease-retry", "0.2"]
    with log_file.open("ab") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


async def test_kill_9_mid_batch_then_restart_matches_a_fresh_rebuild(
    side: ReadSide, store: EventStore, redis_url: str, database_url: str, layout: Layout,
    tmp_path: Path,
) -> None:
    log = SyntheticLog(side.registry)
    total = await load(store, log, 1000)
    log_file = tmp_path / "projector.log"
    first = projector_process(side, redis_url, database_url, layout, log_file)
    try:
        # 180 s: a process starting (imports, migrations) on a loaded 2-core machine, then
        # applying a few thousand events; both waits return as soon as the condition holds.
        deadline = time.monotonic() + 180
        # Kill it while it is busy: well after it started applying, long before it is done.
        while (behind := await lag(side)) > total * len(select()) * 0.6:
            assert first.poll() is None, log_file.read_text()
            assert time.monotonic() < deadline, "the projector process made no progress"
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    assert behind > 0
    await load(store, log, 100)  # the log moves on while no projector runs

    second = projector_process(side, redis_url, database_url, layout, log_file)
    try:
        await wait_caught_up(side, timeout=180)
    finally:
        second.send_signal(signal.SIGINT)
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait(5)
    reports = await verify_all(side)
    assert all(r.clean for r in reports), describe(reports)


async def test_postgres_and_redis_outages_under_load(
    side: ReadSide, store: EventStore, redis_url: str, database_url: str, layout: Layout
) -> None:
    pg, rd = urlsplit(database_url), urlsplit(redis_url)
    pg_proxy = TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432)
    redis_proxy = TcpProxy(rd.hostname or "127.0.0.1", rd.port or 6379)
    pg_url = through(database_url, await pg_proxy.start())
    proxied_redis = aioredis.Redis.from_url(
        through(redis_url, await redis_proxy.start()), decode_responses=True,
        socket_connect_timeout=2, socket_timeout=5,
    )
    pool = await create_pool(pg_url, side.schema)
    proxied = ReadSide(pool, pg_url, side.schema, proxied_redis, side.layout, side.registry)
    metrics = ProjectionMetrics.create(CollectorRegistry())
    options = ProjectorOptions(batch_size=100, block_ms=200, lease_retry_s=0.2,
                               backoff_max_s=0.5)
    service = ProjectorService(proxied, select(), options=options, metrics=metrics)
    task = asyncio.create_task(service.run())
    log = SyntheticLog(side.registry)
    try:
        await load(store, log, 300)
        await wait_caught_up(side)

        await pg_proxy.stop()  # Postgres goes away under load
        await load(store, log, 300)
        await asyncio.sleep(1.5)
        assert await lag(side) > 0
        async with asyncio.timeout(30):  # its lock session is gone, so are its leases
            while service.owned:  # (noticed at its next lease check: waited for, not assumed)
                await asyncio.sleep(0.05)
        await pg_proxy.start()
        await wait_caught_up(side, timeout=30)

        await redis_proxy.stop()  # then Redis
        await load(store, log, 300)
        await asyncio.sleep(1.5)
        assert await lag(side) > 0
        await redis_proxy.start()
        await wait_caught_up(side, timeout=30)
    finally:
        await service.stop()
        await pool.close()
        await proxied_redis.aclose()
        await pg_proxy.stop()
        await redis_proxy.stop()
        task.cancel()
    errors = sum(
        sample.value for metric in metrics.errors.collect() for sample in metric.samples
        if sample.name.endswith("_total")
    )
    assert errors > 0  # it did hit the outages, backed off and retried
    reports = await verify_all(side)
    assert all(r.clean for r in reports), describe(reports)
