"""Acceptance of the bounded log: ≥ 200,000 events, ``ECO2_HOT_RETENTION_S=0``, ``eco2 archive
now`` — and Redis's ``used_memory`` is back near the empty system's while an old job's SSE replay
equals its original transcript, its result is 200, a rebuild from position 0 verifies equal
(same checksums as before trimming) and an ``eventsourcing`` application loads an archived
aggregate. Runs on a private ``redis-server`` so the memory figures are this test's alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from httpx_sse import aconnect_sse

import schemas
from eventstore.archive import Archive
from eventstore.archiver import archive_now
from eventstore.keys import Layout
from eventstore.store import EventStore
from eventstore.trim import RetentionPolicy
from gateway.state import LiveConfig
from infra.embedded import EmbeddedRedis
from infra.gateway_app import create_gateway
from infra.settings import Settings
from projections.builtin import get_projection
from projections.context import ReadSide
from projections.rebuild import rebuild
from projections.snapshot import run_snapshot_tail
from projections.snapshot_reads import snapshot_key
from projections.synthetic import SyntheticLog
from projections.verify import verify
from readmodels.db import create_pool, quote_ident
from tests.background import in_background
from tests.gateway.helpers import ServerThread, append, as_user, full_scan
from tests.readmodels.pg import migrated_pool, new_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
EVENTS = 200_000
LIVE = LiveConfig(keepalive_s=0.5, done_wait_s=3.0, send_timeout_s=5.0)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[str]:
    server = EmbeddedRedis(Settings().with_(data_dir=tmp_path / "redis"))
    url = server.__enter__()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture
async def schema(database_url: str) -> AsyncIterator[str]:
    name = new_schema()
    async with migrated_pool(database_url, name):
        yield name


async def used_memory(redis: aioredis.Redis) -> int:
    return int((await redis.info("memory"))["used_memory"])


async def transcript(http: httpx.AsyncClient, job: str, headers: dict[str, str]) -> list[Any]:
    out = []
    async with aconnect_sse(http, "GET", f"/api/v1/scan/{job}/events", headers=headers) as es:
        assert es.response.status_code == 200
        async for event in es.aiter_sse():
            if event.event != "keepalive":
                out.append((event.id, event.event, json.loads(event.data)))
    return out


def es_application_env(redis_url: str, database_url: str, schema: str, namespace: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventstore.es.persistence", "REDIS_URL": redis_url,
        "DATABASE_URL": database_url, "ECO2_DB_SCHEMA": schema, "ECO2_NAMESPACE": namespace,
        "ECO2_SHARDS": "4",
    }


async def test_two_hundred_thousand_events_trimmed_to_a_bounded_redis(
    own_redis: str, database_url: str, schema: str, tmp_path: Path
) -> None:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    settings = Settings(
        redis_url=own_redis, database_url=database_url, db_schema=schema, namespace=namespace,
        shards=4, data_dir=tmp_path, secret_key="test-secret-0123456789abcdef",
        hot_retention_s=0, idempotency_window_s=0,
    )
    layout = Layout(namespace, 4)
    redis = aioredis.Redis.from_url(own_redis, decode_responses=True)
    pool = await create_pool(database_url, schema, max_size=12)
    store = EventStore(redis, layout, schemas.registry, archive=Archive(pool))
    side = ReadSide(pool, database_url, schema, redis, layout, schemas.registry, own_redis)
    alice = as_user(settings, "alice")
    try:
        with ServerThread(create_gateway(settings, live=LIVE)) as server:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                empty = await used_memory(redis)

                # An old job, seen live by its client.
                job = str(uuid.uuid4())
                async with in_background(run_snapshot_tail(redis, layout, block_ms=100)):
                    await append(store, job, "alice", *full_scan("alice"))
                    original = await transcript(http, job, alice)
                assert [e[0] for e in original] == [str(v) for v in range(1, 11)]

                # History piles up: ≥ 200,000 events.
                log = SyntheticLog(schemas.registry)
                written = 10
                while written < EVENTS:
                    for chunk in log.appends(2000):
                        results = await store.append_batch(chunk)
                        written += sum(len(r.records) for r in results)
                heads = {s: await store.head(s) for s in range(4)}
                assert sum(heads.values()) >= EVENTS

                scans = get_projection("scans")
                await rebuild(side, scans)  # the live tables, from the hot log
                result = await http.get(f"/api/v1/scan/{job}/result", headers=alice)
                assert result.status_code == 200
                full = await used_memory(redis)

                # The client's snapshot has long expired; then `eco2 archive now`.
                await redis.delete(snapshot_key(layout, job))
                env = {
                    **os.environ, "REDIS_URL": own_redis, "DATABASE_URL": database_url,
                    "ECO2_DB_SCHEMA": schema, "ECO2_NAMESPACE": namespace, "ECO2_SHARDS": "4",
                    "ECO2_HOT_RETENTION_S": "0", "ECO2_IDEMPOTENCY_WINDOW_S": "0",
                    "ECO2_DATA_DIR": str(tmp_path),
                }
                done = subprocess.run(
                    [sys.executable, "-m", "infra.cli", "archive", "now"], cwd=REPO, env=env,
                    capture_output=True, text=True, timeout=300,
                )
                assert done.returncode == 0, done.stdout + done.stderr
                for keys in layout.all():
                    assert await redis.xlen(keys.events) == 0
                trimmed = await used_memory(redis)
                # Bounded: back within 2× the empty system (no live jobs are left).
                assert trimmed <= 2 * empty, (empty, full, trimmed)
                assert full > 20 * empty

                # Every read still works, from the archive.
                assert await transcript(http, job, alice) == original
                again = await http.get(f"/api/v1/scan/{job}/result", headers=alice)
                assert again.status_code == 200 and again.json() == result.json()
                # The live tables were built from Redis before trimming; verify replays from
                # position 0 out of Postgres now: same checksums, table by table.
                after = await verify(side, scans)
                assert after.clean, [(t.table, t.only_live, t.only_rebuilt) for t in after.tables]
                assert all(t.live_rows for t in after.tables)
        await _eventsourcing_loads_an_archived_aggregate(own_redis, database_url, redis)
    finally:
        await pool.close()
        await redis.aclose()


async def _eventsourcing_loads_an_archived_aggregate(
    redis_url: str, database_url: str, redis: aioredis.Redis
) -> None:
    from eventsourcing.tests.application import BankAccounts

    namespace, schema = f"es{uuid.uuid4().hex[:10]}", new_schema()
    pool = await create_pool(database_url, schema, max_size=6)
    async with pool.acquire() as conn:
        await conn.execute(f"CREATE SCHEMA {quote_ident(schema)}")
    env = es_application_env(redis_url, database_url, schema, namespace)
    try:
        app = BankAccounts(env=env)
        account_id = app.open_account("Alice", "alice@example.com")
        app.credit_account(account_id, 100)
        app.credit_account(account_id, 25)
        app.close()
        layout = Layout(namespace, 4)
        await archive_now(redis, pool, schema, layout,
                          RetentionPolicy(hot_retention_s=0, idempotency_window_s=0))
        keys = layout.keys(layout.shard_of("BankAccounts"))  # the application's shard
        assert not await redis.exists(keys.aggregate(str(account_id)))  # only in the archive
        reader = BankAccounts(env=env)
        assert reader.get_balance(account_id) == 125
        reader.credit_account(account_id, 5)  # appending to an archived aggregate continues it
        assert reader.get_balance(account_id) == 130
        reader.close()
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA {quote_ident(schema)} CASCADE")
        await pool.close()
