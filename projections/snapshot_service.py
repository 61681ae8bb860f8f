"""The snapshot projector as a service: each shard's in-order loop runs only under its lease.

The snapshot projector handles a shard's events one at a time, in log order, so that a job's
live messages leave in version order. Two consumers of its group on one shard would split and
steal each other's entries (and break that order), so every shard has a lease in Redis
(``{tag}:lease:snapshot``): a process runs a shard's loop only while it holds the shard's
lease, renewing it every third of its TTL. More copies of the process are standbys for the
shards someone holds and owners of the ones no one holds; when an owner dies its leases
expire and the others take over its shards, starting with the entries it left pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import schemas
from eventstore.consumer import RunnerOptions, consumer_name
from eventstore.keys import Layout
from eventstore.lease import RedisLease
from eventstore.redis_client import AsyncRedis
from eventstore.runtime import Runner
from projections.snapshot import SNAPSHOT_GROUP, snapshot_subscription
from schemas.registry import MessageRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseOptions:
    ttl_ms: int = 10_000  # an owner that stops renewing loses the shard after this
    retry_s: float = 1.0  # how often a process asks for a lease it does not hold


class SnapshotService:
    """Run the snapshot projector on every shard whose lease this process holds."""

    def __init__(
        self,
        redis: AsyncRedis,
        layout: Layout,
        registry: MessageRegistry = schemas.registry,
        *,
        options: RunnerOptions | None = None,
        lease: LeaseOptions | None = None,
        consumer: str | None = None,
        url: str | None = None,
    ) -> None:
        self.redis = redis
        self.layout = layout
        self.registry = registry
        self.options = options or RunnerOptions()
        self.lease = lease or LeaseOptions()
        self.consumer = consumer or consumer_name(SNAPSHOT_GROUP)
        self.url = url  # the broker's (default: that of ``redis``)
        self.held: set[int] = set()
        self._stopped = asyncio.Event()

    def stop(self) -> None:
        """Finish the batches in hand, give the leases back and return from ``run``."""
        self._stopped.set()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for shard in range(self.layout.shards):
                group.create_task(self._own(shard))

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), seconds)

    async def _own(self, shard: int) -> None:
        lease = RedisLease(
            self.redis, self.layout.keys(shard).lease(SNAPSHOT_GROUP), self.consumer,
            self.lease.ttl_ms,
        )
        while not self._stopped.is_set():
            try:
                got = await lease.acquire()
            except Exception as exc:
                log.warning("snapshot: lease of shard %d not checked: %s", shard, exc)
                got = False
            if not got:
                await self._pause(self.lease.retry_s)
                continue
            log.info("snapshot: %s took shard %d", self.consumer, shard)
            await self._serve(shard, lease)
        with contextlib.suppress(Exception):
            await lease.release()

    async def _serve(self, shard: int, lease: RedisLease) -> None:
        """Run the shard's loop until the lease is lost or the service stops."""
        runner = Runner(
            self.redis, self.layout, self.registry,
            snapshot_subscription(self.redis, self.layout, self.registry),
            consumer=self.consumer, options=self.options, shards=[shard], url=self.url,
        )
        self.held.add(shard)
        task = asyncio.create_task(runner.run())
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        try:
            while not self._stopped.is_set() and not task.done():
                await self._pause(self.lease.ttl_ms / 3000)
                try:
                    if await lease.renew():
                        renewed = loop.time()
                        continue
                    log.warning("snapshot: %s lost shard %d's lease", self.consumer, shard)
                    break
                except Exception as exc:
                    if loop.time() - renewed > self.lease.ttl_ms / 1000:
                        log.warning("snapshot: shard %d's lease expired: %s", shard, exc)
                        break
        finally:
            runner.stop()
            with contextlib.suppress(Exception):
                await task
            self.held.discard(shard)
