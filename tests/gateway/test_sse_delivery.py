"""SSE delivery latency: an event appended while a client is connected is observed in
``eco2_sse_delivery_seconds`` once written to the stream; the history a connection starts
with is not (it was appended before anyone waited for it)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from httpx_sse import aconnect_sse

from eventstore.keys import Layout
from eventstore.store import EventStore
from gateway.live_hub import LiveHub
from gateway.state import LiveConfig
from infra.gateway_app import create_gateway
from infra.settings import Settings
from projections.live_view import LiveEvent
from schemas.scan import ScanCompleted, ScanQueued, Stage, StageStarted
from tests.gateway.helpers import ServerThread, append

pytestmark = pytest.mark.redis
LIVE = LiveConfig(keepalive_s=0.3, done_wait_s=3.0, send_timeout_s=5.0)


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_gateway(settings, live=LIVE)) as srv:
        yield srv


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        yield client


def sample(metrics: str, name: str) -> float:
    found = re.search(rf'^{name}\{{stream="scan"\}} (\S+)$', metrics, re.M)
    assert found, f"{name} not in /metrics"
    return float(found[1])


async def test_events_appended_while_connected_are_observed_once_written(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], projector: None
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
    stages: list[str] = []
    async with aconnect_sse(http, "GET", f"/api/v1/scan/{job}/events", headers=alice) as es:
        async for event in es.aiter_sse():
            if event.event == "keepalive":
                continue
            stages.append(event.event)
            if event.event == "queued":  # the history: now the job goes on, live
                await append(store, job, "alice", StageStarted(stage=Stage.VISION, progress=5))
                await append(store, job, "alice", ScanCompleted(user_id="alice"))
    assert stages == ["queued", "vision", "done"]
    metrics = (await http.get("/metrics")).text  # the stream has ended: every write is done
    assert sample(metrics, "eco2_sse_delivery_seconds_count") == 2  # vision and done
    assert sample(metrics, "eco2_sse_delivery_seconds_sum") > 0
    assert 'eco2_sse_connections{stream="scan"} 0.0' in metrics


async def test_a_finished_job_s_history_is_not_a_delivery(
    http: httpx.AsyncClient, store: EventStore, alice: dict[str, str], projector: None
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"),
                 ScanCompleted(user_id="alice"))
    async with http.stream("GET", f"/api/v1/scan/{job}/events", headers=alice) as r:
        text = "".join([chunk async for chunk in r.aiter_text()])
    assert "event: done" in text
    metrics = (await http.get("/metrics")).text
    assert "# TYPE eco2_sse_delivery_seconds histogram" in metrics
    assert not re.search(r'^eco2_sse_delivery_seconds_count\{stream="scan"\} [1-9]', metrics, re.M)


async def test_a_live_message_carries_its_event_s_append_time(
    redis_url: str, settings: Settings, store: EventStore, projector: None
) -> None:
    job = str(uuid.uuid4())
    async with LiveHub.open(redis_url, Layout(settings.namespace, settings.shards)) as hub:
        sub = hub.subscribe(job)
        await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
        item = await sub.next(10.0)
        sub.close()
    recorded = await store.last_event(job)
    assert isinstance(item, LiveEvent) and recorded is not None
    assert item.appended_at == recorded.timestamp
