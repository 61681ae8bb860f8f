"""The gateway's reads after Redis was trimmed (hot window 0): chat history, and an old scan job's
SSE replay (same ids, same events) and result, all served from the archive in Postgres."""

# ruff: noqa: F811  (fixtures imported from test_chat_support are used as parameters)
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from eventstore.archiver import archive_now
from eventstore.keys import Layout
from eventstore.store import EventStore
from eventstore.trim import RetentionPolicy
from infra.gateway_app import create_gateway
from infra.settings import Settings
from projections.snapshot_reads import snapshot_key
from tests.gateway.conftest import FAST
from tests.gateway.helpers import append, asgi_client, full_scan
from tests.gateway.test_chat_support import (  # noqa: F401  (fixtures)
    chat_settings,
    chat_worker,
    done_of,
    graph,
    pg,
    read_sse,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
ZERO = RetentionPolicy(hot_retention_s=0, idempotency_window_s=0)


@pytest.fixture
async def api(chat_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_gateway(chat_settings, live=FAST)) as c:
        yield c


async def trim_everything(redis: aioredis.Redis, settings: Settings, pool: asyncpg.Pool) -> Layout:
    layout = Layout(settings.namespace, settings.shards)
    await archive_now(redis, pool, settings.db_schema, layout, ZERO)
    for keys in layout.all():
        assert await redis.xlen(keys.events) == 0
        assert not await redis.keys(keys.aggregate("*"))
    return layout


async def test_chat_history_after_trimming(
    api: httpx.AsyncClient, alice: dict[str, str], chat_worker: object, projector: None,
    chat_settings: Settings, pg: tuple[asyncpg.Pool, str], redis_client: aioredis.Redis,
) -> None:
    r = await api.post("/api/v1/chat", json={"title": "보관"}, headers=alice)
    chat_id = r.json()["id"]
    r = await api.post(f"/api/v1/chat/{chat_id}/messages", json={"message": "페트병 어떻게 버려?"},
                       headers=alice)
    assert r.status_code == 202, r.text
    done_of(await read_sse(api, r.json()["stream_url"], alice))
    before = (await api.get(f"/api/v1/chat/{chat_id}", headers=alice)).json()
    assert [m["role"] for m in before["messages"]] == ["user", "assistant"]
    await trim_everything(redis_client, chat_settings, pg[0])
    after = (await api.get(f"/api/v1/chat/{chat_id}", headers=alice)).json()
    assert after == before
    # The chat goes on: its next event continues the archived versions.
    assert (await api.patch(f"/api/v1/chat/{chat_id}", json={"title": "새 이름"},
                            headers=alice)).status_code == 204
    renamed = (await api.get(f"/api/v1/chat/{chat_id}", headers=alice)).json()
    assert renamed["title"] == "새 이름" and renamed["messages"] == before["messages"]


async def test_an_old_jobs_replay_and_result_after_trimming(
    api: httpx.AsyncClient, alice: dict[str, str], projector: None, store: EventStore,
    chat_settings: Settings, pg: tuple[asyncpg.Pool, str], redis_client: aioredis.Redis,
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice"))
    url = f"/api/v1/scan/{job}/events"
    original = await read_sse(api, url, alice)
    assert [e.id for e in original] == [str(v) for v in range(1, 11)]
    result = await api.get(f"/api/v1/scan/{job}/result", headers=alice)
    assert result.status_code == 200
    layout = await trim_everything(redis_client, chat_settings, pg[0])
    await redis_client.delete(snapshot_key(layout, job))  # the snapshot expired long ago
    assert await read_sse(api, url, alice) == original
    resumed = await read_sse(api, url, {**alice, "Last-Event-ID": "6"})
    assert resumed == original[6:]
    again = await api.get(f"/api/v1/scan/{job}/result", headers=alice)
    assert again.status_code == 200 and again.json() == result.json()
    assert (await api.get(f"/api/v1/scan/{uuid.uuid4()}/result", headers=alice)).status_code == 404
