"""Gateway fixtures: settings on a throwaway namespace, the app with its lifespan, a projector."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
import redis.exceptions as redis_errors

import schemas
from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from eventstore.store import EventStore
from gateway.state import LiveConfig
from infra.gateway_app import create_gateway
from infra.settings import Settings
from projections.snapshot import run_snapshot_tail
from tests.gateway.helpers import as_user, asgi_client

FAST = LiveConfig(keepalive_s=0.5, done_wait_s=2.0, send_timeout_s=5.0)


@pytest.fixture
def settings(redis_url: str, namespace: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        namespace=namespace,
        shards=4,
        data_dir=tmp_path,
        secret_key="test-secret-0123456789abcdef",
        upload_max_bytes=4096,
        upload_ttl_s=60,
        image_hosts=("images.example.org",),
        read_block_ms=100,  # each test's graceful stop waits a read out once
    )


@pytest.fixture
def store(redis_client: aioredis.Redis, settings: Settings) -> EventStore:
    return EventStore(redis_client, Layout(settings.namespace, settings.shards), schemas.registry)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_gateway(settings, live=FAST)) as c:
        yield c


@pytest.fixture
async def projector(redis_url: str, settings: Settings) -> AsyncIterator[None]:
    """The snapshot projector tailing every shard while the test runs."""
    redis = await open_redis(redis_url, decode_responses=True)
    task = asyncio.create_task(
        run_snapshot_tail(redis, Layout(settings.namespace, settings.shards), block_ms=200)
    )
    try:
        yield
    finally:
        if task.done():  # the tail failed while the test ran
            await redis.aclose()
            await task
        task.cancel()
        # A cluster client may not interrupt a blocking XREAD on cancel; closing it ends the
        # read (the runner avoids cancelling reads for the same reason). redis-py's read
        # timeout may turn the cancellation into its TimeoutError (CPython gh-86296).
        await asyncio.wait({task}, timeout=1)
        await redis.aclose()
        with contextlib.suppress(asyncio.CancelledError, redis_errors.TimeoutError,
                                 redis_errors.ConnectionError, ExceptionGroup):
            await task


@pytest.fixture
def alice(settings: Settings) -> dict[str, str]:
    return as_user(settings, "alice")


@pytest.fixture
def bob(settings: Settings) -> dict[str, str]:
    return as_user(settings, "bob")
