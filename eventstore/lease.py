"""A lease in Redis: one owner at a time for a shard's in-order work (the snapshot projector).

``SET key owner NX PX ttl`` takes it, a compare-and-expire renews it, a compare-and-delete
gives it back. The key carries the shard's hash tag, so on a Redis Cluster it lives (and
moves) with the shard. An owner that stops renewing — it died, or it is stuck — loses the
lease after ``ttl_ms`` and another process takes it over.
"""

from __future__ import annotations

from eventstore.redis_client import AsyncRedis

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    """The lease ``key`` for ``owner`` (a name unique to the process)."""

    def __init__(self, redis: AsyncRedis, key: str, owner: str, ttl_ms: int = 10_000) -> None:
        self.redis = redis
        self.key = key
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self) -> bool:
        """Take the lease if it is free (or already ours); True when held."""
        if await self.redis.set(self.key, self.owner, nx=True, px=self.ttl_ms):
            return True
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease; False when it is no longer ours (expired and taken, or gone)."""
        return bool(await self._renew(keys=[self.key], args=[self.owner, self.ttl_ms]))

    async def release(self) -> None:
        """Give the lease back if it is still ours."""
        await self._release(keys=[self.key], args=[self.owner])

    async def holder(self) -> str | None:
        """Who holds the lease now (None when free)."""
        value = await self.redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value
