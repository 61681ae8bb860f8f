"""All wiring in one place: pools, clients, stores and adapters, built from settings.

Entry points (gateway lifespan, workers, projectors, CLI) call ``open_resources``; tests call it
with their own settings (and may replace adapters with in-memory twins afterwards).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis

import schemas
from eventstore.keys import Layout
from eventstore.store import EventStore
from infra.media import FileMediaStore, MediaStore
from infra.settings import Settings
from readmodels.db import create_pool


@dataclass
class Resources:
    """What handlers, projectors and the gateway are given. Built only by ``open_resources``."""

    settings: Settings
    layout: Layout
    redis: aioredis.Redis
    store: EventStore
    pg: asyncpg.Pool[asyncpg.Record] | None  # read models; None when DATABASE_URL is unset
    media: MediaStore  # uploaded images (gateway writes, scan handler reads)


def redis_client(settings: Settings, **kwargs: Any) -> aioredis.Redis:
    """A decoded-responses async Redis client with explicit timeouts."""
    if settings.redis_url is None:
        raise RuntimeError("REDIS_URL is not resolved (start embedded services first)")
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "max_connections": 256,
    }
    options.update(kwargs)
    return aioredis.Redis.from_url(settings.redis_url, **options)


@asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Open every shared resource for ``settings``; close them all on exit."""
    async with AsyncExitStack() as stack:
        redis = redis_client(settings)
        stack.push_async_callback(redis.aclose)
        layout = Layout(settings.namespace, settings.shards)
        store = EventStore(redis, layout, schemas.registry)
        pg = None
        if settings.database_url is not None:
            # min_size=0: nothing connects until used; search_path = settings.db_schema.
            pg = await create_pool(settings.database_url, settings.db_schema)
            stack.push_async_callback(pg.close)
        media = FileMediaStore(settings.data_dir / "media")
        yield Resources(
            settings=settings, layout=layout, redis=redis, store=store, media=media, pg=pg
        )
