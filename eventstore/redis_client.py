"""One way to open Redis: a single node or a Redis Cluster, as the server says (``CLUSTER INFO``).

A plain ``REDIS_URL`` naming any node of a cluster is enough: ``open_redis`` asks that node
whether cluster mode is on and returns redis-py's ``RedisCluster`` (which discovers the other
masters and follows slot moves) or a plain ``Redis``. Everything that talks to Redis opens its
client here, so every part of the system works on both.

Every key of the log carries its shard's hash tag, so a command or script of one shard lands on
one master; keys outside the log (rate limits, auth) are single-key commands spread over slots.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, TypeAlias

import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

AsyncRedis: TypeAlias = aioredis.Redis | aioredis.RedisCluster
SyncRedis: TypeAlias = redis.Redis | redis.RedisCluster

PROBE_TIMEOUT_S = 5.0
# A cluster client has a pool per node that fails rather than waits when full: size it for the
# busiest process (64 handlers, their pipelines and blocking reads) with room to spare.
CLUSTER_MAX_CONNECTIONS = 512


def _is_cluster_reply(reply: Any) -> bool:
    if isinstance(reply, dict):  # redis-py parses CLUSTER INFO into a dict
        return "cluster_state" in reply
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return "cluster_state:" in text


async def is_cluster(url: str) -> bool:
    """True when the server at ``url`` runs in cluster mode (``CLUSTER INFO`` answers)."""
    probe = aioredis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
    )
    try:
        reply = await probe.execute_command("CLUSTER INFO")
    except ResponseError:  # "This instance has cluster support disabled"
        return False
    finally:
        await probe.aclose()
    return _is_cluster_reply(reply)


def is_cluster_sync(url: str) -> bool:
    """``is_cluster`` for synchronous callers."""
    probe = redis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S
    )
    try:
        reply = probe.execute_command("CLUSTER INFO")
    except ResponseError:
        return False
    finally:
        probe.close()
    return _is_cluster_reply(reply)


def _cluster_options(options: dict[str, Any]) -> dict[str, Any]:
    out = dict(options)
    out.setdefault("max_connections", CLUSTER_MAX_CONNECTIONS)
    out["max_connections"] = max(int(out["max_connections"]), CLUSTER_MAX_CONNECTIONS)
    out.pop("timeout", None)  # a blocking-pool option; cluster pools do not wait
    return out


async def open_redis(url: str, *, blocking_pool_timeout: float | None = None,
                     **options: Any) -> AsyncRedis:
    """An async client for ``url``: ``RedisCluster`` on a cluster, else ``Redis``.

    ``options`` are redis-py connection options (``decode_responses``, timeouts,
    ``max_connections``, ``client_name``). With ``blocking_pool_timeout`` a single node's pool
    waits that long for a free connection instead of failing ("Too many connections").
    """
    if await is_cluster(url):
        return aioredis.RedisCluster.from_url(url, **_cluster_options(options))
    if blocking_pool_timeout is not None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url, timeout=blocking_pool_timeout, **options
        )
        return aioredis.Redis.from_pool(pool)
    return aioredis.Redis.from_url(url, **options)


def open_redis_sync(url: str, **options: Any) -> SyncRedis:
    """A synchronous client for ``url`` (the eventsourcing recorders, tools).

    When the server cannot be reached yet, the client is a single-node one whose commands fail
    with ``ConnectionError`` (eventsourcing builds its factory before any I/O and expects the
    first command to report the outage).
    """
    try:
        cluster = is_cluster_sync(url)
    except (redis.ConnectionError, redis.TimeoutError):
        cluster = False
    if cluster:
        return redis.RedisCluster.from_url(url, **_cluster_options(options))
    return redis.Redis.from_url(url, **options)


def decodes_responses(client: AsyncRedis | SyncRedis) -> bool:
    """Whether ``client`` returns ``str`` rather than ``bytes``."""
    return bool(client.get_encoder().decode_responses)


async def node_address(client: AsyncRedis, key: str) -> tuple[str, int] | None:
    """(host, port) of the master serving ``key``'s slot on a cluster; None on a single node."""
    if not isinstance(client, aioredis.RedisCluster):
        return None
    await client.initialize()  # the slot map (a no-op once loaded)
    node = client.get_node_from_key(key)
    return (node.host, int(node.port)) if node is not None else None


def sharded_pubsub(client: AsyncRedis) -> bool:
    """Whether live messages go over sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``).

    On a cluster a classic ``PUBLISH`` is broadcast to every node; a shard channel stays on the
    master of its slot. A single node (Redis 6 included) keeps classic pub/sub.
    """
    return isinstance(client, aioredis.RedisCluster)


POLL_INTERVAL_S = 0.01


async def read_streams(
    client: AsyncRedis, streams: dict[str, str], *, count: int, block_ms: int
) -> list[Any]:
    """``XREAD`` of several streams (``{stream: last id}``), waiting up to ``block_ms``.

    Streams of different shards live in different slots, which one ``XREAD`` cannot span on a
    cluster: there several streams are read without blocking in one pipelined round trip,
    repeated every 10 ms until something arrives or ``block_ms`` has passed (tools and
    watchers only; consumers and projectors follow one shard per call, which blocks).
    """
    if not isinstance(client, aioredis.RedisCluster) or len(streams) == 1:
        return list(await client.xread(streams, count=count, block=block_ms) or [])
    deadline = time.monotonic() + block_ms / 1000
    while True:
        async with client.pipeline(transaction=False) as pipe:
            for stream, last in streams.items():
                pipe.xread({stream: last}, count=count)
            replies = await pipe.execute()
        found = [entry for reply in replies for entry in (reply or [])]
        if found or time.monotonic() >= deadline:
            return found
        await asyncio.sleep(POLL_INTERVAL_S)
