from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

import schemas
from eventstore.keys import Layout
from eventstore.store import EventStore
from projections.context import ReadSide
from readmodels.db import schema_of
from tests.readmodels.pg import migrated_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as pool:
        yield pool


@pytest.fixture
async def side(
    pool: asyncpg.Pool,
    database_url: str,
    redis_url: str,
    redis_client: aioredis.Redis,
    layout: Layout,
) -> ReadSide:
    async with pool.acquire() as conn:
        schema = await schema_of(conn)
    return ReadSide(pool, database_url, schema, redis_client, layout, schemas.registry, redis_url)


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    return EventStore(redis_client, layout, schemas.registry)
