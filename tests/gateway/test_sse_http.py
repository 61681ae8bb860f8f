"""SSE over real HTTP (uvicorn on a free port, httpx-sse clients): drop and resume with
``Last-Event-ID``, resets, ownership, keepalives, ``/metrics``, and 1,000 concurrent clients on
O(shards) Redis connections."""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from eventstore.redis_client import AsyncRedis
from eventstore.store import EventStore
from gateway.state import LiveConfig
from infra.gateway_app import GATEWAY_REDIS_CONNECTIONS, GATEWAY_REDIS_NAME, create_gateway
from infra.settings import Settings
from schemas.scan import ScanCompleted, ScanQueued, Stage, StageStarted
from tests.gateway.helpers import PNG, ServerThread, append, full_scan, until_reached

pytestmark = pytest.mark.redis
LIVE = LiveConfig(keepalive_s=0.3, done_wait_s=3.0, send_timeout_s=5.0)


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_gateway(settings, live=LIVE)) as srv:
        yield srv


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=1200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=20, limits=limits) as client:
        yield client


async def read_events(
    http: httpx.AsyncClient, job: str, headers: dict[str, str], *, stop_after: int | None = None,
) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) of the stream's events (keepalives left out), until it ends or
    ``stop_after`` events were read (then the connection is dropped)."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    async with aconnect_sse(http, "GET", f"/api/v1/scan/{job}/events", headers=headers) as es:
        assert es.response.status_code == 200
        async for event in es.aiter_sse():
            if event.event == "keepalive":
                continue
            out.append((event.id, event.event, json.loads(event.data)))
            if stop_after is not None and len(out) >= stop_after:
                break
    return out


async def test_drop_mid_job_and_resume_without_gap_or_duplicate(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], projector: None
) -> None:
    job = str(uuid.uuid4())
    events = full_scan("alice")
    await append(store, job, "alice", *events[:4])
    first = await read_events(http, job, alice, stop_after=3)  # then the connection drops
    assert [e[0] for e in first] == ["1", "2", "3"]
    await append(store, job, "alice", *events[4:7])  # happens while disconnected

    async def finish() -> None:
        await asyncio.sleep(0.3)
        for event in events[7:]:
            await append(store, job, "alice", event)
            await asyncio.sleep(0.02)

    finisher = asyncio.create_task(finish())
    rest = await read_events(http, job, {**alice, "Last-Event-ID": first[-1][0]})
    await finisher
    ids = [int(e[0]) for e in first + rest]
    assert ids == list(range(1, 11))
    assert [e[1] for e in rest][-1] == "done"
    done = rest[-1][2]
    assert done["status"] == "completed" and done["seq"] == 10 and done["job_id"] == job
    assert done["result"]["pipeline_result"]["final_answer"]["user_answer"] == "페트병이에요"
    # Reconnecting after `done`: 204, so the browser's EventSource stops retrying.
    r = await http.get(f"/api/v1/scan/{job}/events", headers={**alice, "Last-Event-ID": "10"})
    assert r.status_code == 204


async def test_fresh_connection_to_a_finished_job_then_done(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], projector: None
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice"))
    got = await read_events(http, job, alice)
    assert [e[0] for e in got] == [str(v) for v in range(1, 11)]
    assert [e[1] for e in got] == [
        "queued", "vision", "vision", "rule", "rule", "answer", "answer", "reward", "reward", "done"
    ]


async def test_malformed_or_foreign_last_event_id_is_a_clear_reset(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], projector: None
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice"))
    for bad in ["not-a-number", "42", "-3"]:
        headers = {**alice, "Last-Event-ID": bad}
        async with http.stream("GET", f"/api/v1/scan/{job}/events", headers=headers) as r:
            text = "".join([chunk async for chunk in r.aiter_text()])
        assert r.status_code == 200
        assert ": reset:" in text, bad  # said so, as an SSE comment the client ignores
        assert re.findall(r"^id: (\d+)", text, flags=re.M) == [str(v) for v in range(1, 11)]


async def test_streams_of_other_users_and_unknown_jobs_are_404(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], bob: dict[str, str],
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
    r = await http.get(f"/api/v1/scan/{job}/events", headers=bob)
    assert (r.status_code, r.json()["code"]) == (404, "not_found")
    r = await http.get(f"/api/v1/scan/{uuid.uuid4()}/events", headers=alice)
    assert r.status_code == 404
    r = await http.get(f"/api/v1/scan/{job}/events")
    assert r.status_code == 401


async def test_a_just_submitted_job_streams_before_its_first_event(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], bob: dict[str, str],
    projector: None,
) -> None:
    up = (await http.post(
        "/api/v1/images/scan", json={"filename": "a.png", "content_type": "image/png"},
        headers=alice,
    )).json()
    put = await http.put(up["upload_url"], content=PNG, headers={"Content-Type": "image/png"})
    assert put.status_code == 200
    r = await http.post("/api/v1/scan", json={"image_url": up["cdn_url"]}, headers=alice)
    assert r.status_code == 202
    job = r.json()["job_id"]
    other = await http.get(r.json()["stream_url"], headers=bob)
    assert other.status_code == 404  # pending, but not bob's

    async def worker() -> None:  # stands in for the scan chain
        await asyncio.sleep(0.3)
        await append(store, job, "alice", ScanQueued(user_id="alice", image_url=up["cdn_url"]),
                     StageStarted(stage=Stage.VISION, progress=5))
        await asyncio.sleep(0.1)
        await append(store, job, "alice", ScanCompleted(user_id="alice"))

    task = asyncio.create_task(worker())
    got = await read_events(http, job, alice)
    await task
    assert [(e[0], e[1]) for e in got] == [("1", "queued"), ("2", "vision"), ("3", "done")]


async def test_keepalive_events_while_quiet_and_metrics(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], projector: None
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
    names: list[str] = []
    async with aconnect_sse(http, "GET", f"/api/v1/scan/{job}/events", headers=alice) as es:
        async for event in es.aiter_sse():
            names.append(event.event)
            if names.count("keepalive") == 2:
                metrics = (await http.get("/metrics")).text
                assert re.search(r'^eco2_sse_connections\{stream="scan"\} 1\.0$', metrics, re.M)
                break
    assert names[0] == "queued" and names[1:] == ["keepalive", "keepalive"]
    for name in ["eco2_dlq_entries", "eco2_sse_hub_pubsub_connections 4.0",
                 "eco2_sse_hub_redis_connections"]:
        assert name in metrics
    ready = await http.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def connections_of_this_gateway(redis: AsyncRedis) -> int:
    """Connections to Redis held by the gateway of this process: its shared pool and its SSE
    hub, told apart by their client names from the test's own clients (projector, store)."""
    pid = os.getpid()
    names = [c["name"] for c in await redis.client_list()]
    return sum(n == f"{GATEWAY_REDIS_NAME}-{pid}" or n.startswith(f"eco2-sse-read-{pid}-")
               or n.startswith(f"eco2-sse-sub-{pid}-") for n in names)


@pytest.mark.slow
async def test_a_thousand_clients_use_o_shards_redis_connections(
    server: ServerThread, store: EventStore, alice: dict[str, str], settings: Settings,
    projector: None,
) -> None:
    # No per-read timeout: on a loaded machine one process serving and reading 1,000 streams
    # can pause longer than any fixed figure; until_reached fails when progress stops instead.
    limits = httpx.Limits(max_connections=1200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=None, limits=limits) as http:
        await a_thousand_clients(http, store, alice, settings)


async def a_thousand_clients(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], settings: Settings,
) -> None:
    jobs = [str(uuid.uuid4()) for _ in range(250)]
    for job in jobs:
        await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
    opened = 0
    received: dict[int, list[str]] = {}

    async def client(n: int, job: str) -> None:
        nonlocal opened
        ids: list[str] = []
        received[n] = ids
        async with aconnect_sse(http, "GET", f"/api/v1/scan/{job}/events", headers=alice) as es:
            async for event in es.aiter_sse():
                if event.event == "keepalive":
                    continue
                ids.append(event.id)
                if event.id == "1":
                    opened += 1
        assert ids[-1] == "2"

    tasks = [asyncio.create_task(client(n, jobs[n % 250])) for n in range(1000)]
    try:
        await until_reached(lambda: opened, 1000, what="SSE clients open", tasks=tasks)
        metrics = (await http.get("/metrics")).text
        hub = int(float(re.search(r"^eco2_sse_hub_redis_connections (\S+)$", metrics, re.M)[1]))
        gateway = await connections_of_this_gateway(store.redis)
        print(f"\n1000 SSE clients: the hub holds {hub} Redis connections, the gateway {gateway}")
        assert re.search(r'^eco2_sse_connections\{stream="scan"\} 1000\.0$', metrics, re.M)
        assert hub <= settings.shards + LIVE.read_pool_size  # pub/sub per shard + reader pool
        for job in jobs:
            await append(store, job, "alice", ScanCompleted(user_id="alice"))
        await until_reached(
            lambda: sum(t.done() for t in tasks), 1000, what="SSE clients done", tasks=tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert all(ids == ["1", "2"] for ids in received.values())
    # The whole gateway: the hub, plus the request path's shared pool (auth checks per request,
    # the awaited commands' handlers), which the gateway caps: a bound that does not grow with
    # the number of streams.
    assert gateway <= settings.shards + LIVE.read_pool_size + GATEWAY_REDIS_CONNECTIONS
