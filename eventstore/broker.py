"""The FastStream Redis broker the handler runtime runs on, and the pieces that keep its main
path cheap: a broker on the server of our Redis client (a node or a Cluster), its pool size,
stream settings FastStream need not copy, and a parser and decoder that hand over the entry."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Self

import redis.asyncio as aioredis
from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub

from eventstore.consumer import RunnerOptions
from eventstore.redis_client import AsyncRedis

Broker = RedisBroker | RedisClusterBroker
# FastStream's own lines: its errors (a handler raised; the entry stays pending) are kept, its
# per-entry and per-task chatter is not.
broker_log = logging.getLogger(f"{__name__}.faststream")
broker_log.setLevel(logging.WARNING)


def broker_url(redis: AsyncRedis) -> str:
    """The URL of the server ``redis`` talks to (a Cluster: one of its nodes)."""
    if isinstance(redis, aioredis.RedisCluster):
        node = (redis.get_nodes() or list(redis.nodes_manager.startup_nodes.values()))[0]
        return f"redis://{node.host}:{node.port}"
    kw = redis.connection_pool.connection_kwargs
    if kw.get("path"):
        return f"unix://{kw['path']}?db={kw.get('db', 0)}"
    scheme = "rediss" if "ssl" in redis.connection_pool.connection_class.__name__.lower() else "redis"
    auth = ""
    if kw.get("password"):
        auth = f"{kw.get('username') or ''}:{kw['password']}@"
    return f"{scheme}://{auth}{kw.get('host', 'localhost')}:{kw.get('port', 6379)}/{kw.get('db', 0)}"


def new_broker(redis: AsyncRedis, url: str | None = None, **kw: Any) -> Broker:
    """A FastStream broker on the server of ``redis``; its per-entry lines are DEBUG, its
    errors (a handler raising: the entry stays pending) logged as errors."""
    cls = RedisClusterBroker if isinstance(redis, aioredis.RedisCluster) else RedisBroker
    return cls(url or broker_url(redis), logger=broker_log, log_level=logging.DEBUG, **kw)


ACK_CONNECTIONS_CAP = 1024  # beyond this many handlers finishing at once, acks queue or fail


def broker_connections(options: RunnerOptions, shards: list[int]) -> int:
    """The FastStream client's pool size: every subscriber holds one connection in its read
    (a reader and a reaper on each shard's source and retry stream) and every handler that
    finishes needs one for its XACK. redis-py's pool is not blocking and holds 100 by default:
    with hundreds of concurrent handlers, acks failed ("Too many connections", the entry then
    waits for a claim) and so did the readers' XREADGROUP, after which FastStream backs off for
    5 s — seconds of pickup wait for every command on that shard."""
    return 4 * len(shards) + min(options.workers, ACK_CONNECTIONS_CAP) + 8


class Stream(StreamSub):
    """A ``StreamSub`` that FastStream does not deep-copy on every read: its subscribers ask
    for ``add_prefix(broker prefix)`` for each XREADGROUP / XAUTOCLAIM (a ``deepcopy`` of the
    settings, several per empty poll of a reaper). Our brokers have no prefix, and FastStream
    only reads the settings, so without one the settings themselves are returned."""

    __slots__ = ()

    def add_prefix(self, prefix: str) -> Self:
        return self if not prefix else super().add_prefix(prefix)


async def fields_only(raw: Any, parse: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's parser without the body: it would re-encode every entry's fields as JSON
    (the handlers read ``raw_message``'s fields instead), a cost per entry on the main path."""
    msg = await parse({**raw, "data": [] if isinstance(raw["data"], list) else {}})
    msg.raw_message = raw
    return msg


async def the_message(msg: Any, decode: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's decoder: the handler's argument is the message itself (there is no body).
    Asking for it with ``Context("message")`` resolved it through fast_depends, which runs a
    sync custom field in a worker thread: a thread-pool hop for every message."""
    return msg
