"""Fixtures of the chat gateway tests: read models on a fresh schema, the chat worker with the
scripted graph, the chat projector, and an SSE reader. (No tests here.)"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from httpx_sse import aconnect_sse
from prometheus_client import CollectorRegistry

import schemas
from commands.chat.scripted import ScriptedChatGraph
from commands.chat.turn import Coalescing
from commands.chat.worker import chat_subscription
from eventstore.consumer import RunnerOptions
from eventstore.keys import Layout
from eventstore.runtime import Runner
from eventstore.store import EventStore
from infra.settings import Settings
from projections.chat import CHAT
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.runner import ProjectorService
from projections.worker import ProjectorOptions
from tests.background import in_background
from tests.readmodels.pg import migrated_pool, new_schema


@dataclass
class Sse:
    event: str
    id: str | None
    data: dict[str, Any]


@pytest.fixture
async def pg(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, str]]:
    schema = new_schema()
    async with migrated_pool(database_url, schema) as pool:
        yield pool, schema


@pytest.fixture
def chat_settings(settings: Settings, database_url: str, pg: tuple[asyncpg.Pool, str]) -> Settings:
    return settings.with_(database_url=database_url, db_schema=pg[1])


@pytest.fixture
def graph() -> ScriptedChatGraph:
    return ScriptedChatGraph(token_delay_s=0.01)


@pytest.fixture
async def chat_worker(
    chat_settings: Settings, redis_client: aioredis.Redis, graph: ScriptedChatGraph
) -> AsyncIterator[ScriptedChatGraph]:
    layout = Layout(chat_settings.namespace, chat_settings.shards)
    store = EventStore(redis_client, layout, schemas.registry)
    runner = Runner(
        redis_client, layout, schemas.registry,
        chat_subscription(store, graph, coalescing=Coalescing(max_tokens=4, interval_s=0.02)),
        options=RunnerOptions(block_ms=100, claim_interval_s=0.1),
    )
    task = asyncio.create_task(runner.run())
    try:
        yield graph
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def chat_projector(
    chat_settings: Settings, pg: tuple[asyncpg.Pool, str], redis_client: aioredis.Redis
) -> AsyncIterator[None]:
    assert chat_settings.database_url
    side = ReadSide(pg[0], chat_settings.database_url, pg[1], redis_client,
                    Layout(chat_settings.namespace, chat_settings.shards), schemas.registry)
    service = ProjectorService(side, [CHAT], options=ProjectorOptions(block_ms=100,
                               lease_retry_s=0.1), metrics=ProjectionMetrics.create(CollectorRegistry()))
    async with in_background(service.run()):
        yield


async def read_sse(
    client: httpx.AsyncClient, url: str, headers: dict[str, str],
    stop: Callable[[list[Sse]], bool] | None = None, timeout: float = 15.0,
) -> list[Sse]:
    """Named events of one connection until ``done``, the stream's end, or ``stop``."""
    events: list[Sse] = []
    async with asyncio.timeout(timeout), aconnect_sse(client, "GET", url, headers=headers) as src:
        if src.response.status_code == 204:
            return events
        src.response.raise_for_status()
        async for sse in src.aiter_sse():
            if sse.event == "keepalive":
                continue
            events.append(Sse(sse.event, sse.id or None, json.loads(sse.data) if sse.data else {}))
            if sse.event == "done" or (stop is not None and stop(events)):
                break
    return events


def text_of(events: list[Sse]) -> str:
    """The client's text: ``token_recovery`` replaces it, ``token`` appends to it."""
    text = ""
    for e in events:
        if e.event == "token_recovery":
            text = e.data["accumulated"]
        elif e.event == "token":
            text += e.data["content"]
    return text


def done_of(events: list[Sse]) -> dict[str, Any]:
    assert events and events[-1].event == "done", [e.event for e in events]
    return events[-1].data
