"""What the contract tests share: API.md's endpoints, the ``contract`` mark that registers the
ones a test covers, shape checks, and the client's moves (sign in, upload, follow a stream)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis
from httpx_sse import aconnect_sse
from prometheus_client import CollectorRegistry

import schemas
from eventstore.keys import Layout
from eventstore.store import EventStore
from gateway.app import ROUTES
from gateway.openapi import served, shape
from infra.settings import Settings
from projections.builtin import select
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.runner import ProjectorService
from projections.snapshot import run_snapshot_tail
from projections.worker import ProjectorOptions
from readmodels.db import create_pool
from tests.background import in_background
from tests.gateway.helpers import PNG

ORIGIN = "http://localhost:5173"
NONE = type(None)
STR_OR_NONE = (str, NONE)

# Every endpoint of API.md (the contract), as (method, path template).
API_MD: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/api/v1/auth/{provider}"), ("GET", "/api/v1/auth/{provider}/callback"),
    ("POST", "/api/v1/auth/refresh"), ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/users/me"), ("PATCH", "/api/v1/users/me"), ("DELETE", "/api/v1/users/me"),
    ("GET", "/api/v1/users/me/characters"),
    ("GET", "/api/v1/users/me/characters/{character_name}/ownership"),
    ("GET", "/api/v1/character/catalog"),
    ("POST", "/api/v1/images/{channel}"),
    ("POST", "/api/v1/scan"), ("GET", "/api/v1/scan/{job_id}/events"),
    ("GET", "/api/v1/scan/{job_id}/result"), ("GET", "/api/v1/scan/categories"),
    ("GET", "/api/v1/chat"), ("POST", "/api/v1/chat"), ("GET", "/api/v1/chat/{chat_id}"),
    ("PATCH", "/api/v1/chat/{chat_id}"), ("DELETE", "/api/v1/chat/{chat_id}"),
    ("POST", "/api/v1/chat/{chat_id}/messages"), ("POST", "/api/v1/chat/{job_id}/input"),
    ("GET", "/api/v1/chat/{job_id}/events"),
    ("GET", "/api/v1/locations/centers"), ("GET", "/api/v1/locations/centers/{center_id}"),
    ("GET", "/api/v1/locations/search"), ("GET", "/api/v1/locations/suggest"),
    ("GET", "/api/v1/info/news"),
    # operations (ours): health, readiness, metrics, this document
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/docs"),
})
SERVED = {(method, shape(path)) for method, path in served(ROUTES)}
COVERED: set[tuple[str, str]] = set()


def contract(*endpoints: tuple[str, str]) -> Callable[[Any], Any]:
    """Register the endpoints a test covers; xfail (strict) while any is not served."""
    unknown = [e for e in endpoints if e not in API_MD]
    assert not unknown, f"not API.md endpoints: {unknown}"
    COVERED.update(endpoints)
    missing = [f"{m} {p}" for m, p in endpoints if (m, shape(p)) not in SERVED]
    return pytest.mark.xfail(
        bool(missing), reason=f"not served yet: {', '.join(missing)}", strict=True
    )


def has(value: Any, **fields: type | tuple[type, ...]) -> dict[str, Any]:
    """Assert ``value`` is an object with these fields of these types (extras are fine)."""
    assert isinstance(value, dict), value
    for name, kinds in fields.items():
        assert name in value, f"missing {name!r} in {value}"
        assert isinstance(value[name], kinds), f"{name}={value[name]!r} is not {kinds}"
    return value


@dataclass
class Gateway:
    url: str
    settings: Settings
    store: EventStore
    redis: aioredis.Redis


async def dev_login(client: httpx.AsyncClient, nickname: str) -> httpx.Response:
    """Sign in through the dev provider like the PWA in a browser; the callback's response."""
    start = await client.get("/api/v1/auth/kakao", headers={"X-Frontend-Origin": ORIGIN})
    assert start.status_code == 200, start.text
    data = start.json()["data"]
    page = urlsplit(data["authorization_url"])
    assert (await client.get(f"{page.path}?{page.query}")).status_code == 200
    form = await client.post("/api/v1/auth/dev/authorize",
                             data={"state": data["state"], "nickname": nickname})
    assert form.status_code == 303, form.text
    return await client.get(form.headers["location"])


async def upload(user: httpx.AsyncClient, channel: str = "scan") -> dict[str, Any]:
    r = await user.post(f"/api/v1/images/{channel}",
                        json={"filename": "p.png", "content_type": "image/png"})
    assert r.status_code == 200, r.text
    ticket = has(r.json(), key=str, upload_url=str, cdn_url=str, expires_in=int,
                 required_headers=dict)
    put = await httpx.AsyncClient().put(ticket["upload_url"], content=PNG,
                                        headers=ticket["required_headers"])
    assert put.status_code == 200
    return ticket


async def user_id_of(user: httpx.AsyncClient) -> str:
    me = (await user.get("/api/v1/users/me")).json()
    return str(me.get("user_id") or me["username"])


@contextlib.asynccontextmanager
async def projectors(settings: Settings) -> AsyncIterator[None]:
    """Every read-model projection running on the module's namespace and schema."""
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=4)
    client = aioredis.Redis.from_url(settings.redis_url, decode_responses=True)
    side = ReadSide(pool, settings.database_url, settings.db_schema, client,
                    Layout(settings.namespace, settings.shards), schemas.registry)
    service = ProjectorService(
        side, select(), options=ProjectorOptions(batch_size=200, block_ms=100, lease_retry_s=0.1),
        metrics=ProjectionMetrics.create(CollectorRegistry()),
    )
    try:
        async with in_background(service.run()):
            yield
    finally:
        await client.aclose()
        await pool.close()


@contextlib.asynccontextmanager
async def projector(gw: Gateway) -> AsyncIterator[None]:
    layout = Layout(gw.settings.namespace, gw.settings.shards)
    async with in_background(run_snapshot_tail(gw.redis, layout, block_ms=100)):
        yield


async def sse(user: httpx.AsyncClient, path: str, *, until: str,
              timeout: float = 10) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of a stream's events up to ``until`` (keepalives left out)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    async with asyncio.timeout(timeout), aconnect_sse(user, "GET", path) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for event in source.aiter_sse():
            if event.event == "keepalive":
                continue
            assert event.event, "only named events reach the client"
            seen.append((event.event, json.loads(event.data)))
            if event.event == until:
                break
    return seen
