"""Per-process fan-out of live job messages: O(shards) Redis connections, any number of clients.

``LiveHub`` holds ONE pub/sub connection per shard (``{tag}:live``) and hands each published
message to the subscriptions of its job — bounded per-client queues, so a slow client never
holds up the others: when its queue overflows it is told so and disconnected (it resumes by
``Last-Event-ID``). When a shard's pub/sub connection is re-established, every subscription of
that shard is asked to re-sync from the log, because messages published meanwhile are lost.

Catch-up reads (the job's stream, snapshots, ownership) go through ``reader``: a small blocking
pool, so a thousand clients connecting at once queue for a few connections instead of opening
a thousand. All connections carry a client name with this hub's ``token`` (``CLIENT LIST``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import math
import os
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.asyncio.client import PubSub
from sse_starlette import ServerSentEvent

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis, node_address, open_redis, sharded_pubsub
from projections.live_view import LiveEvent

log = logging.getLogger(__name__)

_NEVER = float("inf")
TICK_S = 0.1  # the ticker's period: a wait ends at most this much late


class Frame(ServerSentEvent):
    """An SSE message encoded once when it arrives and written as these same bytes to every
    client of its job (``ensure_bytes`` calls ``encode``)."""

    def __init__(self, data: str, *, event: str, id: str) -> None:
        super().__init__(data, event=event, id=id)
        self._encoded = super().encode()

    def encode(self) -> bytes:
        return self._encoded


@dataclass(frozen=True)
class PublishedEvent(LiveEvent):
    """A live message as the hub received it, with its SSE frame."""

    frame: Frame | None = None


class Signal(enum.Enum):
    TIMEOUT = "timeout"  # nothing arrived in time (send a keepalive)
    RESYNC = "resync"  # live messages may have been lost: re-read the job's stream
    OVERFLOW = "overflow"  # the client fell too far behind: disconnect it


class Subscription:
    """One client's view of the hub: the live messages of one job, in arrival order.

    A waiting client holds no timer of its own: ``next`` parks on a future that a delivery
    or the hub's one ticker completes (see ``LiveHub._tick``)."""

    __slots__ = (
        "_deadline",
        "_items",
        "_resync",
        "_timed_out",
        "_waiter",
        "closed",
        "hub",
        "job_id",
        "log_version",
        "max_items",
        "overflowed",
        "shard",
    )

    def __init__(self, hub: LiveHub, job_id: str, shard: int, max_items: int) -> None:
        self.hub = hub
        self.job_id = job_id
        self.shard = shard
        self.max_items = max_items
        self.overflowed = False
        self.closed = False
        self._resync = False
        self._timed_out = False
        self._items: deque[LiveEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._deadline = _NEVER  # loop time by which a waiting ``next`` returns TIMEOUT
        # the job's version in the log when the last TIMEOUT was given (None: not known)
        self.log_version: int | None = None

    def deliver(self, item: LiveEvent) -> None:
        if self.overflowed:
            return
        if len(self._items) >= self.max_items:
            self.overflowed = True
            self._items.clear()
        else:
            self._items.append(item)
        self._wake()

    def resync(self) -> None:
        self._resync = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _due(self, now: float) -> bool:
        return now >= self._deadline

    def _expire(self, now: float, log_version: int | None) -> None:
        """The ticker's word: a ``next`` waiting past its deadline returns TIMEOUT, with the
        job's version in the log (read by the ticker for all the due clients at once)."""
        if now >= self._deadline:
            self._deadline = _NEVER
            self._timed_out = True
            self.log_version = log_version
            self._wake()

    async def next(self, wait_s: float) -> LiveEvent | Signal:
        """The next live message or signal, waiting up to about ``wait_s`` seconds (the hub's
        ticker ends the wait, up to one tick late)."""
        if not (self._items or self.overflowed or self._resync):
            loop = asyncio.get_running_loop()
            self._timed_out = False
            self._deadline = loop.time() + wait_s
            self.hub._arm(self)
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
                self._deadline = _NEVER
        if self.overflowed:
            return Signal.OVERFLOW
        if self._resync:
            self._resync = False
            return Signal.RESYNC
        if self._items:
            self._timed_out = False
            return self._items.popleft()
        self._timed_out = False
        return Signal.TIMEOUT

    def close(self) -> None:
        """Leave the hub (idempotent)."""
        if not self.closed:
            self.closed = True
            self.hub._remove(self)


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
        self._subs: dict[str, set[Subscription]] = {}
        self._by_shard: list[set[Subscription]] = [set() for _ in range(layout.shards)]
        self._watchers = [_ShardWatcher(self, k) for k in range(layout.shards)]
        self._ready = [asyncio.Event() for _ in range(layout.shards)]
        self._connected = [False] * layout.shards
        self._tasks: list[asyncio.Task[None]] = []
        # the waits by the tick their deadline falls in: a tick looks only at its own
        self._wheel: dict[int, list[Subscription]] = {}
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
        if not sharded_pubsub(self.reader):
            self._sub_client = aioredis.Redis.from_url(
                self.redis_url, client_name=f"{self.name}-sub-{self.token}", **common
            )
        self._tasks = [asyncio.create_task(self._run_shard(k)) for k in range(self.layout.shards)]
        self._tasks.append(asyncio.create_task(self._tick()))
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

    # -- the one timer of every waiting client -------------------------------------------

    def _arm(self, sub: Subscription) -> None:
        """Have the ticker look at ``sub`` once its deadline has passed."""
        self._wheel.setdefault(math.ceil(sub._deadline / TICK_S), []).append(sub)

    async def _tick(self) -> None:
        """Time out the waits that passed their deadline: one timer for all the clients
        instead of one per client and wait (10,000 streams, each re-arming a timer on every
        message, cost more than the messages). A wait ended by a message stays in its slot
        until the slot's tick, which finds it no longer due."""
        loop = asyncio.get_running_loop()
        last = math.floor(loop.time() / TICK_S)
        while True:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            current = math.floor(now / TICK_S)
            due: list[Subscription] = []
            for slot in range(last + 1, current + 1):
                due.extend(sub for sub in self._wheel.pop(slot, ()) if sub._due(now))
            last = current
            if not due:
                continue
            versions = await self._log_versions({sub.job_id for sub in due})
            for sub in due:
                try:
                    sub._expire(now, versions.get(sub.job_id))
                except Exception:  # one client's failure must not stop every client's timer
                    log.exception("live: timing out a wait of job %s failed", sub.job_id)

    async def _log_versions(self, job_ids: set[str]) -> dict[str, int]:
        """The jobs' versions in Redis, in one pipelined round trip (a job whose stream is
        not in Redis, or a failed read, is left out: its client reads it itself)."""
        jobs = list(job_ids)
        try:
            async with self.reader.pipeline(transaction=False) as pipe:
                for job in jobs:
                    pipe.xrevrange(self.layout.keys_for(job).aggregate(job), count=1)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            log.warning("live: could not read the versions of %d jobs: %r", len(jobs), exc)
            return {}
        out: dict[str, int] = {}
        for job, reply in zip(jobs, replies, strict=True):
            if isinstance(reply, list) and reply:
                out[job] = int(str(reply[0][0]).split("-", 1)[0])
        return out

    # -- the shard readers ----------------------------------------------------------------

    def _resync_shard(self, shard: int) -> None:
        for sub in list(self._by_shard[shard]):
            sub.resync()

    def _dispatch(self, raw: str) -> None:
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
