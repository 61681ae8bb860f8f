"""What /ops and /metrics say beyond the log's figures: a rebuild's progress read from the
checkpoint table, the gateway's own request and SSE figures, and links from a dead letter to the
trace of the request that caused it when a trace UI is configured (``ECO2_TRACE_URL``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

import schemas
from eventstore.groups import ConsumerGroup
from eventstore.keys import Layout
from eventstore.store import EventStore
from eventstore.tracing import trace_id_of
from gateway.web.admin_figures import histogram_quantile
from infra.gateway_app import create_gateway
from infra.settings import Settings
from projections.builtin import get_projection
from projections.commit import ensure_checkpoints
from readmodels import versions
from readmodels.db import create_pool
from schemas.envelope import Metadata
from schemas.scan import SCAN_JOB, RequestScan
from tests.gateway.conftest import FAST
from tests.gateway.helpers import append, as_user, asgi_client, full_scan
from tests.readmodels.pg import migrated_pool, new_schema

ROOT = "root-user"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


@pytest.fixture
async def ops_settings(settings: Settings, database_url: str) -> AsyncIterator[Settings]:
    schema = new_schema()
    async with migrated_pool(database_url, schema):
        yield settings.with_(
            database_url=database_url, db_schema=schema, admins=(ROOT,),
            trace_url="http://jaeger.test:16686/trace/{trace_id}",
        )


@pytest.fixture
async def ops(ops_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_gateway(ops_settings, live=FAST)) as client:
        yield client


@pytest.fixture
def root(ops_settings: Settings) -> dict[str, str]:
    return as_user(ops_settings, ROOT)


def test_quantiles_from_buckets_as_promql_estimates_them() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (float("inf"), 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.75)
    assert histogram_quantile(0.99, [(1.0, 90.0), (float("inf"), 100.0)]) == 1.0
    assert histogram_quantile(0.99, [(1.0, 0.0), (float("inf"), 0.0)]) is None


def test_the_trace_id_of_a_log_entry_s_metadata() -> None:
    meta = Metadata(trace={"traceparent": TRACEPARENT}).model_dump_json()
    assert trace_id_of({"meta": meta}) == TRACE_ID
    assert trace_id_of({"meta": Metadata().model_dump_json()}) is None
    assert trace_id_of({"meta": "not json"}) is None
    assert trace_id_of({}) is None


def test_the_trace_url_setting_needs_a_place_for_the_id() -> None:
    assert Settings.from_env({}).trace_url is None
    url = "http://jaeger:16686/trace/{trace_id}"
    assert Settings.from_env({"ECO2_TRACE_URL": url}).trace_url == url
    with pytest.raises(ValueError, match="trace_id"):
        Settings.from_env({"ECO2_TRACE_URL": "http://jaeger:16686/"})


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_running_rebuild_shows_its_progress_on_metrics_and_the_overview(
    ops: httpx.AsyncClient, root: dict[str, str], ops_settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    layout = Layout(ops_settings.namespace, ops_settings.shards)
    store = EventStore(redis_client, layout, schemas.registry)
    for _ in range(3):
        await append(store, str(uuid.uuid4()), "alice", *full_scan("alice"))
    heads = {k: await store.head(k) for k in range(layout.shards)}
    busy = max(heads, key=heads.__getitem__)
    assert ops_settings.database_url is not None
    pool = await create_pool(ops_settings.database_url, ops_settings.db_schema)
    scans = get_projection("scans")
    try:  # what a rebuild that has replayed part of one shard leaves in Postgres
        async with pool.acquire() as conn:
            version = await versions.create_version(conn, scans.group, scans.version)
            suffix = versions.suffix_of(version)
            await ensure_checkpoints(conn, scans.name, suffix, range(layout.shards))
            await conn.execute(
                "UPDATE checkpoints SET position = $1"
                " WHERE projection = $2 AND suffix = $3 AND shard = $4",
                heads[busy] - 1, scans.name, suffix, busy,
            )
    finally:
        await pool.close()

    metrics = (await ops.get("/metrics")).text
    assert f'eco2_rebuild_position{{projection="scans"}} {float(heads[busy] - 1)}' in metrics
    assert f'eco2_rebuild_target{{projection="scans"}} {float(sum(heads.values()))}' in metrics
    overview = (await ops.get("/api/v1/admin/overview", headers=root)).json()
    [row] = [p for p in overview["projections"] if p["name"] == "scans"]
    assert row["rebuild"] == {
        "version": version, "position": heads[busy] - 1, "target": sum(heads.values()),
        "ratio": (heads[busy] - 1) / sum(heads.values()),
    }
    assert not re.search(r'^eco2_rebuild_position\{projection="users"\}', metrics, re.M)


@pytest.mark.redis
@pytest.mark.postgres
async def test_the_overview_has_the_gateway_s_figures_and_the_trace_url(
    ops: httpx.AsyncClient, root: dict[str, str],
) -> None:
    for _ in range(3):
        assert (await ops.get("/health")).status_code == 200
    overview = (await ops.get("/api/v1/admin/overview", headers=root)).json()
    figures = overview["figures"]
    assert figures["http_requests"] >= 3 and figures["http_errors"] == 0
    assert figures["http_p95_s"] is not None and figures["http_p95_s"] > 0
    assert (figures["sse_streams"], figures["sse_delivered"]) == (0, 0)
    assert figures["sse_delivery_p99_s"] is None
    assert overview["trace_url"] == "http://jaeger.test:16686/trace/{trace_id}"


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_dead_letter_links_to_the_trace_of_its_request(
    ops: httpx.AsyncClient, root: dict[str, str], ops_settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    layout = Layout(ops_settings.namespace, ops_settings.shards)
    job = str(uuid.uuid4())
    command = schemas.registry.envelope(
        RequestScan(job_id=job, user_id="alice", image_url="http://testserver/media/x.png"),
        aggregate_id=job, aggregate_type=SCAN_JOB,
        metadata=Metadata(user_id="alice", trace={"traceparent": TRACEPARENT}),
    )
    shard = layout.shard_of(job)
    await redis_client.xadd(layout.keys(shard).commands, command.to_fields())
    group = ConsumerGroup(redis_client, layout, group="scan", source="commands", consumer="c1")
    await group.ensure([shard])
    (delivery,) = await group.read(shard, count=1, block_ms=100)
    dlq_id = await group.dead_letter(delivery, "boom", attempts=5)

    listed = (await ops.get("/api/v1/admin/dlq", headers=root)).json()["dead_letters"]
    [letter] = [d for d in listed if d["id"] == dlq_id and d["shard"] == shard]
    assert letter["trace_id"] == TRACE_ID
    assert letter["trace_link"] == f"http://jaeger.test:16686/trace/{TRACE_ID}"
    shown = (await ops.get(f"/api/v1/admin/dlq/{shard}/{dlq_id}", headers=root)).json()
    assert shown["trace_link"] == letter["trace_link"]
