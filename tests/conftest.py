"""Shared fixtures: real Redis and Postgres, one throwaway namespace/schema per test.

Tests read ``REDIS_URL`` / ``DATABASE_URL`` and default to the local servers; every test gets
its own key namespace (Redis) or schema (Postgres) so runs never collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from eventstore.keys import Layout

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh key namespace; its keys are deleted afterwards."""
    ns = f"t{uuid.uuid4().hex[:12]}"
    yield ns
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{{{ns}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def layout(namespace: str) -> Layout:
    return Layout(namespace=namespace, shards=4)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
