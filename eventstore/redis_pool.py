"""A bounded Redis connection pool whose waiters queue on a semaphore.

redis-py's ``BlockingConnectionPool`` serialises every get *and* every release through one
``asyncio.Condition``: each is a lock hand-over through the event loop, queued behind every
caller already waiting. With thousands of requests or handlers in one process (a gateway under
5,000 users, a worker running 2,500 chat turns) the hand-overs, not Redis and not the CPU,
set the pace: the gateway sat at a tenth of a core while requests waited the pool's whole
timeout for a connection and were answered 503. Here a free slot is taken without waiting
(``Semaphore.acquire``'s fast path), and a release wakes exactly one waiter, first come first
served; the connections themselves are redis-py's own pool's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError


class QueuedConnectionPool(aioredis.ConnectionPool):  # type: ignore[misc]  # untyped base
    """At most ``max_connections`` connections; callers beyond wait up to ``timeout`` seconds
    for one (then ``ConnectionError("No connection available.")``, like redis-py's pool)."""

    def __init__(self, *, timeout: float | None = 20, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.timeout = timeout
        self._slots = asyncio.Semaphore(self.max_connections)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise RedisConnectionError("No connection available.") from exc
        try:
            return await super().get_connection(*args, **kwargs)
        except BaseException:
            self._slots.release()
            raise

    async def release(self, connection: Any) -> None:
        held = connection in self._in_use_connections
        try:
            await super().release(connection)
        finally:
            if held:
                self._slots.release()
