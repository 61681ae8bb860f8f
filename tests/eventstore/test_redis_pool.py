"""The bounded pool: never more than ``max_connections``, waiters served, a timeout reported."""

from __future__ import annotations

import asyncio
import os

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from eventstore.redis_pool import QueuedConnectionPool

pytestmark = pytest.mark.redis


def _client(max_connections: int, timeout: float) -> aioredis.Redis:
    pool = QueuedConnectionPool.from_url(
        os.environ["REDIS_URL"], max_connections=max_connections, timeout=timeout)
    return aioredis.Redis.from_pool(pool)


async def test_many_callers_share_few_connections() -> None:
    redis = _client(3, 10)
    try:
        replies = await asyncio.gather(*(redis.ping() for _ in range(500)),
                                       *(redis.echo(str(i)) for i in range(500)))
        assert replies[:500] == [True] * 500
        assert replies[500:] == [str(i).encode() for i in range(500)]
        pool = redis.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 3
        assert not pool._in_use_connections
    finally:
        await redis.aclose()


async def test_a_caller_waits_for_a_connection_then_gives_up() -> None:
    redis = _client(1, 0.2)
    try:
        async with redis.pipeline(transaction=False) as held:
            held.ping()
            conn = await redis.connection_pool.get_connection()  # the only one, kept
            with pytest.raises(RedisConnectionError, match="No connection available"):
                await redis.ping()
            await redis.connection_pool.release(conn)
        assert await redis.ping() is True  # released: the slot is free again
    finally:
        await redis.aclose()
