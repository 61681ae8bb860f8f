"""Refuse a Redis that may evict keys: the log, its groups and revocations must never vanish.

Redis evicts keys under memory pressure unless ``maxmemory-policy`` is ``noeviction`` (then a
write past ``maxmemory`` fails loudly instead). Read through ``INFO memory`` rather than
``CONFIG GET``, which managed services often disable.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eventstore.errors import EventStoreError

log = logging.getLogger(__name__)

REQUIRED_POLICY = "noeviction"


class EvictingRedis(EventStoreError):
    """The Redis server's ``maxmemory-policy`` would let it evict log keys."""


async def check_memory_policy(redis: aioredis.Redis) -> None:
    """Raise ``EvictingRedis`` unless the server's ``maxmemory-policy`` is ``noeviction``.

    An unreachable server is not refused here (it is logged): whoever starts first during an
    outage checks again on its next start, and ``eco2 up`` checks before any process runs.
    """
    try:
        info: dict[str, Any] = await redis.info("memory")
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        log.warning("could not check Redis maxmemory-policy (unreachable: %s)", exc)
        return
    policy = str(info.get("maxmemory_policy", REQUIRED_POLICY))
    if policy != REQUIRED_POLICY:
        raise EvictingRedis(
            f"Redis maxmemory-policy is {policy!r}: it may evict event-log, consumer-group and"
            f" revocation keys under memory pressure. Set `maxmemory-policy {REQUIRED_POLICY}`"
            " (redis.conf, or CONFIG SET maxmemory-policy noeviction) and size maxmemory for"
            " the hot window; Eco² refuses to start otherwise."
        )
