"""The admin API behind /ops: who may call it, the overview figures, dead letters, rebuilds
and the live tail — against real Redis and Postgres, through the app's routes."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from httpx_sse import aconnect_sse

import schemas
from eventstore.groups import ConsumerGroup
from eventstore.keys import Layout
from eventstore.store import EventStore
from gateway.web.admin_auth import is_admin
from infra.gateway_app import create_gateway
from infra.settings import Settings
from projections.halts import EventRejected, record_halt
from projections.synthetic import SyntheticLog
from readmodels.db import create_pool
from schemas.envelope import Metadata
from schemas.scan import SCAN_JOB, RequestScan, ScanQueued
from tests.gateway.conftest import FAST
from tests.gateway.helpers import ServerThread, append, as_user, asgi_client, full_scan
from tests.readmodels.pg import migrated_pool, new_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ROOT = "root-user"  # listed in ECO2_ADMINS by user id


@pytest.fixture
async def ops_settings(settings: Settings, database_url: str) -> AsyncIterator[Settings]:
    schema = new_schema()
    async with migrated_pool(database_url, schema):
        yield settings.with_(database_url=database_url, db_schema=schema, admins=(ROOT,))


@pytest.fixture
async def ops(ops_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_gateway(ops_settings, live=FAST)) as client:
        yield client


@pytest.fixture
def root(ops_settings: Settings) -> dict[str, str]:
    return as_user(ops_settings, ROOT)


@pytest.fixture
def user(ops_settings: Settings) -> dict[str, str]:
    return as_user(ops_settings, "alice")


def _store(redis_client: aioredis.Redis, settings: Settings) -> EventStore:
    return EventStore(redis_client, Layout(settings.namespace, settings.shards), schemas.registry)


async def dead_letter(
    redis_client: aioredis.Redis, settings: Settings, error: str
) -> tuple[int, str]:
    """A scan command dead-lettered by the scan group's own code path: (shard, DLQ entry id).
    Entry ids are unique per shard only: two shards may dead-letter in the same millisecond."""
    layout = Layout(settings.namespace, settings.shards)
    job = str(uuid.uuid4())
    command = schemas.registry.envelope(
        RequestScan(job_id=job, user_id="alice", image_url="http://testserver/media/x.png"),
        aggregate_id=job, aggregate_type=SCAN_JOB, metadata=Metadata(user_id="alice"),
    )
    shard = layout.shard_of(job)
    await redis_client.xadd(layout.keys(shard).commands, command.to_fields())
    group = ConsumerGroup(redis_client, layout, group="scan", source="commands", consumer="c1")
    await group.ensure([shard])
    (delivery,) = await group.read(shard, count=1, block_ms=100)
    return shard, await group.dead_letter(delivery, error, attempts=5)


# -- who may operate ------------------------------------------------------------------------


def test_admins_setting_defaults_and_parsing() -> None:
    assert Settings.from_env({}).admins == ("admin",)
    production = {"ECO2_PRODUCTION": "1", "ECO2_SECRET_KEY": "x" * 32}
    assert Settings.from_env(production).admins == ()
    assert Settings.from_env({"ECO2_ADMINS": " kim , 5a1e-id,,kim "}).admins == ("kim", "5a1e-id")


def test_usernames_count_only_while_the_dev_sign_in_is_on() -> None:
    dev = Settings(admins=("admin", "u-1"), secret_key="admin-test-secret-0123456789")
    assert is_admin(dev, "u-1", None) and is_admin(dev, "u-2", "admin")
    assert not is_admin(dev, "u-2", "someone")
    for closed in (dev.with_(production=True), dev.with_(dev_login=False)):
        assert is_admin(closed, "u-1", "whoever")
        assert not is_admin(closed, "u-2", "admin")


@pytest.mark.parametrize("path", [
    "/api/v1/admin/overview", "/api/v1/admin/dlq", "/api/v1/admin/dlq/0/1-0",
    "/api/v1/admin/projections/scans/rebuild", "/api/v1/admin/tail",
])
async def test_admin_routes_refuse_others(
    ops: httpx.AsyncClient, user: dict[str, str], path: str
) -> None:
    assert (await ops.get(path)).status_code == 401
    refused = await ops.get(path, headers=user)
    assert refused.status_code == 403 and "ECO2_ADMINS" in refused.json()["detail"]


async def test_whoami_tells_the_page_who_operates(
    ops: httpx.AsyncClient, user: dict[str, str], root: dict[str, str]
) -> None:
    assert (await ops.get("/api/v1/admin/me", headers=user)).json()["admin"] is False
    assert (await ops.get("/api/v1/admin/me", headers=root)).json() == {
        "user_id": ROOT, "username": "", "admin": True,
    }


# -- overview -------------------------------------------------------------------------------


async def test_overview_reports_heads_groups_and_projection_lag(
    ops: httpx.AsyncClient, root: dict[str, str], ops_settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    store = _store(redis_client, ops_settings)
    jobs = [str(uuid.uuid4()) for _ in range(3)]
    for job in jobs:
        await append(store, job, "alice", *full_scan("alice"))
    layout = Layout(ops_settings.namespace, ops_settings.shards)
    reward = ConsumerGroup(redis_client, layout, group="reward", source="events", consumer="r1")
    await reward.ensure(range(layout.shards))
    busy = layout.shard_of(jobs[0])
    taken = await reward.read(busy, count=2, block_ms=100)  # delivered, never acked

    body = (await ops.get("/api/v1/admin/overview", headers=root)).json()
    heads = {s["shard"]: s["head"] for s in body["shards"]}
    assert sum(heads.values()) == 30 and len(heads) == ops_settings.shards
    groups = {(g["group"], g["shard"]): g for g in body["groups"]}
    assert groups[("reward", busy)]["pending"] == len(taken) == 2
    assert groups[("reward", busy)]["lag"] == heads[busy] - 2
    names = [p["name"] for p in body["projections"]]
    assert names == ["scans", "users", "characters", "stats", "chat"]
    scans = body["projections"][0]
    assert scans["active"] == 1 and scans["lag"] == 30  # no projector has run
    assert {s["shard"]: s["lag"] for s in scans["shards"]} == heads
    assert body["projections_error"] is None


# -- dead letters ---------------------------------------------------------------------------


async def test_dead_letters_inspect_replay_and_purge(
    ops: httpx.AsyncClient, root: dict[str, str], ops_settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    first = await dead_letter(redis_client, ops_settings, "TimeoutError: vision")
    second = await dead_letter(redis_client, ops_settings, "ValueError: bad image")
    listed = (await ops.get("/api/v1/admin/dlq", headers=root)).json()["dead_letters"]
    assert {(d["shard"], d["id"]) for d in listed} == {first, second}
    one = next(d for d in listed if (d["shard"], d["id"]) == first)
    assert one["group"] == "scan" and one["type"] == "scan.requested" and one["attempts"] == 5
    only = await ops.get("/api/v1/admin/dlq", params={"error": "valueerror"}, headers=root)
    assert [(d["shard"], d["id"]) for d in only.json()["dead_letters"]] == [second]

    shown = (await ops.get(f"/api/v1/admin/dlq/{first[0]}/{first[1]}", headers=root)).json()
    assert shown["fields"]["dlq_error"] == "TimeoutError: vision"
    assert json.loads(shown["fields"]["data"])["user_id"] == "alice"
    assert (await ops.get(f"/api/v1/admin/dlq/{one['shard']}/9-9", headers=root)).status_code == 404

    # Acting on everything must be asked for; a dry run changes nothing.
    refused = await ops.post("/api/v1/admin/dlq/replay", json={}, headers=root)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "all"
    unsharded = await ops.post("/api/v1/admin/dlq/purge", json={"ids": [first[1]]}, headers=root)
    assert unsharded.status_code == 422 and unsharded.json()["errors"][0]["field"] == "shard"
    dry = await ops.post("/api/v1/admin/dlq/purge", json={"all": True, "dry_run": True},
                         headers=root)
    assert len(dry.json()["purged"]) == 2

    replayed = await ops.post("/api/v1/admin/dlq/replay",
                              json={"shard": first[0], "ids": [first[1]]}, headers=root)
    assert [(d["shard"], d["id"]) for d in replayed.json()["replayed"]] == [first]
    layout = Layout(ops_settings.namespace, ops_settings.shards)
    retry = await redis_client.xrange(layout.keys(one["shard"]).retry("scan"))
    assert len(retry) == 1 and retry[0][1]["agg"] == one["aggregate_id"]
    assert "dlq_error" not in retry[0][1]

    purged = await ops.post("/api/v1/admin/dlq/purge", json={"all": True}, headers=root)
    assert [(d["shard"], d["id"]) for d in purged.json()["purged"]] == [second]
    assert (await ops.get("/api/v1/admin/dlq", headers=root)).json()["dead_letters"] == []


# -- rebuilds -------------------------------------------------------------------------------


async def test_rebuild_runs_in_the_gateway_and_reports_progress(
    ops: httpx.AsyncClient, root: dict[str, str], ops_settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    store = _store(redis_client, ops_settings)
    for _ in range(5):
        await append(store, str(uuid.uuid4()), "alice", *full_scan("alice"))
    assert (await ops.post("/api/v1/admin/projections/nope/rebuild", headers=root)).status_code == 404
    started = await ops.post("/api/v1/admin/projections/scans/rebuild", headers=root)
    assert started.status_code == 202 and started.json()["state"] == "running"
    deadline = time.monotonic() + 30
    while True:
        state = (await ops.get("/api/v1/admin/projections/scans/rebuild", headers=root)).json()
        if state["state"] != "running" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert state["state"] == "done", state
    assert (state["previous"], state["version"]) == (1, 2)
    assert state["done"] == state["total"] == 50
    overview = (await ops.get("/api/v1/admin/overview", headers=root)).json()
    assert overview["projections"][0]["active"] == 2
    assert overview["projections"][0]["lag"] == 0  # the rebuild caught up to the heads


# -- the live tail (real HTTP: the stream never ends by itself) ---------------------------------


@pytest.fixture
def server(ops_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_gateway(ops_settings, live=FAST)) as srv:
        yield srv


async def test_tail_sends_the_backlog_then_new_events(
    server: ServerThread, root: dict[str, str], ops_settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    store = _store(redis_client, ops_settings)
    old = str(uuid.uuid4())
    await append(store, old, "alice", *full_scan("alice")[:3])
    new = str(uuid.uuid4())
    seen: list[dict] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        async with aconnect_sse(http, "GET", "/api/v1/admin/tail?backlog=2", headers=root) as es:
            assert es.response.headers["content-type"].startswith("text/event-stream")
            async for event in es.aiter_sse():
                seen.append(json.loads(event.data))
                if len(seen) == 2:  # the backlog is out: append while the tail follows
                    await append(store, new, "alice", ScanQueued(user_id="alice",
                                                                 image_url="http://x/y.png"))
                if len(seen) == 3:
                    break
    assert [(e["aggregate_id"], e["version"]) for e in seen] == [(old, 2), (old, 3), (new, 1)]
    assert seen[2]["type"] == "scan.queued" and seen[2]["position"] >= 1
    assert '"user_id"' in seen[2]["preview"]


async def test_sse_keeps_flowing_while_an_ops_rebuild_runs(
    server: ServerThread, root: dict[str, str], ops_settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    """The rebuild folds in a worker process: this gateway's SSE clients keep getting their
    keepalives (every 0.5 s) while it runs. Before, it folded on the gateway's event loop."""
    layout = Layout(ops_settings.namespace, ops_settings.shards)
    store = EventStore(redis_client, layout, schemas.registry)
    for chunk in SyntheticLog(schemas.registry).appends(2000):
        await store.append_batch(chunk)
    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice")[:3])  # a scan still running
    alice = as_user(ops_settings, "alice")
    arrivals: list[float] = []
    states: list[dict[str, Any]] = []

    async def watch_rebuild(http: httpx.AsyncClient) -> None:
        while not states or states[-1]["state"] == "running":
            await asyncio.sleep(0.1)
            url = "/api/v1/admin/projections/scans/rebuild"
            states.append((await http.get(url, headers=root)).json())

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        async with aconnect_sse(http, "GET", f"/api/v1/scan/{job}/events", headers=alice) as es:
            events = es.aiter_sse()
            while (await anext(events)).event != "keepalive":  # replay done, now idle
                pass
            started = await http.post("/api/v1/admin/projections/scans/rebuild", headers=root)
            assert started.status_code == 202
            watcher = asyncio.create_task(watch_rebuild(http))
            async with asyncio.timeout(120):
                while not watcher.done():
                    event = await anext(events)
                    arrivals.append(time.monotonic())
                    assert event.event == "keepalive"
            await watcher
    assert states[-1]["state"] == "done", states[-1]
    assert states[-1]["worker_pid"] != os.getpid()  # not folded by this gateway's process
    assert states[-1]["done"] > 15_000
    running = len([s for s in states if s["state"] == "running"]) * 0.1
    assert len(arrivals) >= running / 0.5 / 2  # at least half the keepalives due meanwhile
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert max(gaps, default=0) < 2.0, gaps  # never stalled for 4 keepalive periods


async def test_a_halted_projection_shows_on_metrics_and_the_overview(
    ops: httpx.AsyncClient, root: dict[str, str], ops_settings: Settings
) -> None:
    assert ops_settings.database_url is not None
    pool = await create_pool(ops_settings.database_url, ops_settings.db_schema)
    try:
        async with pool.acquire() as conn:
            await record_halt(conn, "v1", EventRejected(
                "scans", 2, 17, kind="database", error="DataError: NUL", event_id="e-1",
                event_type="scan.queued",
            ))
    finally:
        await pool.close()
    metrics = (await ops.get("/metrics")).text
    assert 'eco2_projection_halted{projection="scans",shard="2"} 1.0' in metrics
    overview = (await ops.get("/api/v1/admin/overview", headers=root)).json()
    [scans] = [p for p in overview["projections"] if p["name"] == "scans"]
    [halt] = scans["halted"]
    assert (halt["shard"], halt["position"], halt["event_id"]) == (2, 17, "e-1")
    assert halt["skip_command"].startswith("eco2 projections skip scans --shard 2 --position 17")
