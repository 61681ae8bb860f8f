"""Per-process fan-out of live job messages: O(shards) Redis connections, any number of clients.

``LiveHub`` holds ONE pub/sub connection per shard (``{tag}:live``) and hands each published
message to the subscriptions of its job — bounded per-client queues, so a slow client never
holds up the others: when its queue overflows it is told so and disconnected (it resumes by
``Last-Event-ID``). When a shard's pub/sub connection is re-established, every subscription of
that shard is asked to re-sync from the log, because messages published meanwhile are lost.

Each client's view is a ``Subscription`` (``gateway.live_subscription``); the waits of all of
them are timed out by one ``Ticker`` (``gateway.live_ticker``).

Catch-up reads (the job's stream, snapshots, ownership) go through ``reader``: a small blocking
pool, so a thousand clients connecting at once queue for a few connections instead of opening
a thousand. All connections carry a client name with this hub's ``token`` (``CLIENT LIST``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis, node_address, open_redis, sharded_pubsub
from gateway.live_subscription import Frame, PublishedEvent, Subscription
from gateway.live_ticker import JobVersions, Ticker
from projections.snapshot_reads import live_messages

log = logging.getLogger(__name__)


class _ShardWatcher:
    """Bound method target for redis-py's (weakly held) reconnect callbacks."""

    def __init__(self, hub: LiveHub, shard: int) -> None:
        self.hub = hub
        self.shard = shard

    async def on_connect(self, connection: Any) -> None:
        # redis-py re-subscribed on this reconnect; what was published meanwhile is gone.
        self.hub._resync_shard(self.shard)


class LiveHub:
    """Fan-out of ``{tag}:live`` to per-client subscriptions. Use ``LiveHub.open(...)``."""

    def __init__(
        self,
        redis_url: str,
        layout: Layout,
        *,
        queue_size: int = 256,
        read_pool_size: int = 8,
        name: str = "eco2-sse",
    ) -> None:
        self.layout = layout
        self.queue_size = queue_size
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.name = name
        self.redis_url = redis_url
        self.read_pool_size = read_pool_size
        self._sub_client: aioredis.Redis | None = None  # single node: one client, a pubsub/shard
        self.reader: AsyncRedis  # set by start()
        self._versions: JobVersions  # set by start()
        self._subs: dict[str, set[Subscription]] = {}
        self._by_shard: list[set[Subscription]] = [set() for _ in range(layout.shards)]
        self._watchers = [_ShardWatcher(self, k) for k in range(layout.shards)]
        self._ready = [asyncio.Event() for _ in range(layout.shards)]
        self._connected = [False] * layout.shards
        self._tasks: list[asyncio.Task[None]] = []
        self.ticker = Ticker(self._log_versions)  # the one timer of every waiting client
        self.published = 0  # messages received from Redis (for metrics)

    @classmethod
    @asynccontextmanager
    async def open(cls, redis_url: str, layout: Layout, **options: Any) -> AsyncIterator[LiveHub]:
        """A started hub (every shard subscribed), closed on exit."""
        hub = cls(redis_url, layout, **options)
        try:
            await hub.start()
            yield hub
        finally:
            await hub.aclose()

    async def start(self, wait_s: float = 10.0) -> None:
        """Subscribe every shard; returns once all subscriptions are confirmed."""
        common: dict[str, Any] = {"decode_responses": True, "socket_connect_timeout": 5}
        self.reader = await open_redis(
            self.redis_url,
            blocking_pool_timeout=30,
            max_connections=self.read_pool_size,
            client_name=f"{self.name}-read-{self.token}",
            socket_timeout=30,
            **common,
        )
        if isinstance(self.reader, aioredis.RedisCluster):
            await self.reader.initialize()  # the slot map, to find each shard channel's master
        self._versions = JobVersions(self.reader, self.layout)
        if not sharded_pubsub(self.reader):
            self._sub_client = aioredis.Redis.from_url(
                self.redis_url, client_name=f"{self.name}-sub-{self.token}", **common
            )
        self._tasks = [asyncio.create_task(self._run_shard(k)) for k in range(self.layout.shards)]
        self._tasks.append(asyncio.create_task(self.ticker.run()))
        async with asyncio.timeout(wait_s):
            for ready in self._ready:
                await ready.wait()

    async def aclose(self) -> None:
        pending = {task for task in self._tasks if not task.done()}
        while pending:  # cancel again if a library swallowed one (see eventstore.cancellation)
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        for task in self._tasks:
            if not task.cancelled() and task.exception() is not None:
                log.warning("live: shard reader ended with %r", task.exception())
        if self._sub_client is not None:
            await self._sub_client.aclose()
        if hasattr(self, "reader"):
            await self.reader.aclose()
            if isinstance(self.reader, aioredis.Redis):
                await self.reader.connection_pool.disconnect()

    # -- clients --------------------------------------------------------------------------

    def subscribe(self, job_id: str) -> Subscription:
        """Register for ``job_id``'s live messages; do this BEFORE reading its history."""
        sub = Subscription(self, job_id, self.layout.shard_of(job_id), self.queue_size)
        self._subs.setdefault(job_id, set()).add(sub)
        self._by_shard[sub.shard].add(sub)
        if not self._connected[sub.shard]:
            sub.resync()  # the shard is reconnecting: re-read once it is back
        return sub

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.job_id]
        self._by_shard[sub.shard].discard(sub)

    @property
    def clients(self) -> int:
        return sum(len(s) for s in self._by_shard)

    @property
    def pubsub_connections(self) -> int:
        return sum(self._connected)

    async def redis_connections(self) -> int:
        """Connections this hub holds right now, counted by the server (``CLIENT LIST``)."""
        if isinstance(self.reader, aioredis.RedisCluster):
            per_node = await self.reader.client_list(
                target_nodes=aioredis.RedisCluster.ALL_NODES
            )
            clients = [c for node in per_node.values() for c in node]
        else:
            clients = await self.reader.client_list()
        return sum(1 for c in clients if self.token in (c.get("name") or ""))

    async def _log_versions(self, job_ids: set[str]) -> dict[str, int]:
        """The versions in the log of the jobs whose waits the ticker times out."""
        return await self._versions.read(job_ids)

    # -- the shard readers ----------------------------------------------------------------

    def _resync_shard(self, shard: int) -> None:
        for sub in list(self._by_shard[shard]):
            sub.resync()

    def _dispatch(self, published: str) -> None:
        for raw in live_messages(published):  # a projector batch's messages, in log order
            self._dispatch_one(raw)

    def _dispatch_one(self, raw: str) -> None:
        try:
            data = orjson.loads(raw)
            job_id, version, stage = str(data["job_id"]), int(data["seq"]), str(data["stage"])
            appended_at = float(data.get("ts") or 0.0)
        except (ValueError, KeyError, TypeError):
            log.warning("live: ignoring a malformed message: %.200s", raw)
            return
        self.published += 1
        subs = self._subs.get(job_id)
        if not subs:
            return
        # encoded once here, the same bytes for every client of the job
        frame = Frame(raw, event=stage, id=str(version))
        item = PublishedEvent(job_id, version, stage, raw, appended_at, frame)
        for sub in list(subs):
            sub.deliver(item)

    async def _shard_pubsub(self, channel: str) -> tuple[PubSub, aioredis.Redis | None]:
        """A pub/sub connection for ``channel``: on the shared subscriber client (single node),
        or on a client of the master that serves the channel's slot (cluster, sharded)."""
        if self._sub_client is not None:
            return self._sub_client.pubsub(), None
        assert isinstance(self.reader, aioredis.RedisCluster)
        address = await node_address(self.reader, channel)
        assert address is not None
        node = aioredis.Redis(
            host=address[0], port=address[1], decode_responses=True, socket_connect_timeout=5,
            client_name=f"{self.name}-sub-{self.token}",
        )
        return node.pubsub(), node

    async def _run_shard(self, shard: int) -> None:
        channel = self.layout.keys(shard).live
        backoff = 0.1
        first = True
        sharded = self._sub_client is None
        kinds = ("smessage", "ssubscribe", "sunsubscribe") if sharded else (
            "message", "subscribe", "unsubscribe")
        while True:
            node: aioredis.Redis | None = None
            pubsub: PubSub | None = None
            try:
                pubsub, node = await self._shard_pubsub(channel)
                if sharded:
                    await pubsub.ssubscribe(channel)
                else:
                    await pubsub.subscribe(channel)
                while True:  # the confirmation, before anyone relies on this shard
                    reply = await pubsub.get_message(timeout=5.0)
                    if reply is None:
                        raise TimeoutError(f"no SUBSCRIBE confirmation for {channel}")
                    if reply["type"] == kinds[1]:
                        break
                assert pubsub.connection is not None
                pubsub.connection.register_connect_callback(self._watchers[shard].on_connect)
                self._connected[shard] = True
                self._ready[shard].set()
                if not first:
                    self._resync_shard(shard)
                first, backoff = False, 0.1
                async for reply in pubsub.listen():
                    if reply["type"] == kinds[0]:
                        self._dispatch(reply["data"])
                    elif reply["type"] == kinds[2]:
                        # The server dropped us: the shard's slot moved to another master.
                        raise ConnectionError(f"{channel} moved")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._connected[shard] = False
                log.warning("live: shard %d subscription lost (%s); retrying", shard, exc)
                if isinstance(self.reader, aioredis.RedisCluster):
                    with contextlib.suppress(Exception):  # learn where the slot lives now
                        await self.reader.nodes_manager.initialize()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._connected[shard] = False
                with contextlib.suppress(Exception):
                    if pubsub is not None:
                        await pubsub.aclose()
                    if node is not None:
                        await node.aclose()
