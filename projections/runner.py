"""Running the live projectors of a process: leases decide which shards it serves.

Every ``lease_retry_s`` the service checks its lock session, tries the leases of the
(projection, shard) pairs it does not serve yet, and starts a ``ShardProjector`` for each one it
gets. Several processes therefore spread the shards between them, and when one dies its
session's locks are freed and the others take its shards over at their next attempt. When the
lock session itself is lost (Postgres restarted or unreachable), every projector of the process
stops at once: its leases are gone, and it resumes only after re-acquiring them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from projections.builtin import select
from projections.context import ReadSide
from projections.leases import LeaseHolder, lease_key
from projections.metrics import ProjectionMetrics, projection_metrics
from projections.projection import Projection
from projections.worker import Backoff, ProjectorOptions, ShardProjector
from readmodels.migrate import migrate

if TYPE_CHECKING:
    from infra.bootstrap import Resources

log = logging.getLogger(__name__)

Slot = tuple[str, int]  # (projection name, shard)


class ProjectorService:
    """The projectors of one process."""

    def __init__(
        self,
        side: ReadSide,
        projections: Iterable[Projection],
        *,
        options: ProjectorOptions | None = None,
        metrics: ProjectionMetrics | None = None,
    ) -> None:
        self.side = side
        # A projection without handlers has nothing to do (its tables are filled elsewhere).
        self.projections = [p for p in projections if p.handlers]
        self.options = options or ProjectorOptions()
        self.metrics = metrics or projection_metrics()
        self.leases = LeaseHolder(side.dsn, side.schema)
        self.workers: dict[Slot, asyncio.Task[None]] = {}
        self._session = 0

    @property
    def owned(self) -> set[Slot]:
        """The (projection, shard) pairs this process serves right now."""
        return {slot for slot, task in self.workers.items() if not task.done()}

    async def run(self) -> None:
        """Serve as many shards as the leases allow, forever (until cancelled)."""
        backoff = Backoff(self.options)
        try:
            await self._migrate(backoff)
            while True:
                healthy = await self._tick()
                if healthy:
                    backoff.reset()
                    await asyncio.sleep(self.options.lease_retry_s)
                else:
                    await asyncio.sleep(backoff.next())
        finally:
            await self._stop_all()
            await self.leases.close()

    async def _migrate(self, backoff: Backoff) -> None:
        while True:
            try:
                await migrate(self.side.pool)
                return
            except Exception as exc:
                log.warning("read-model migrations not applied yet: %s (retrying)", exc)
                await asyncio.sleep(backoff.next())

    async def _tick(self) -> bool:
        alive = await self.leases.check()
        if not alive or self.leases.sessions != self._session:
            # Leases of the previous lock session are gone: whoever holds them now owns those
            # shards, so every projector started under it must stop before anything else.
            await self._stop_all()
            self._session = self.leases.sessions
        if not alive:
            return False
        for slot, task in list(self.workers.items()):
            if task.done():  # only on a bug: run() never returns; free the shard for others
                await self._stop(slot)
        try:
            for projection in self.projections:
                for shard in range(self.side.layout.shards):
                    slot = (projection.name, shard)
                    if slot in self.workers:
                        continue
                    if await self.leases.try_acquire(self._key(slot)):
                        self._start(projection, shard)
        except Exception as exc:
            log.warning("lease attempt failed: %s", exc)
            return False
        return True

    def _key(self, slot: Slot) -> int:
        return lease_key(self.side.schema, *slot)

    def _start(self, projection: Projection, shard: int) -> None:
        worker = ShardProjector(self.side, projection, shard, self.options, self.metrics)
        slot = (projection.name, shard)
        self.workers[slot] = asyncio.create_task(
            worker.run(), name=f"projector-{projection.name}-{shard}"
        )
        self.metrics.owned.labels(projection=projection.name, shard=str(shard)).set(1)
        log.info("projector %s shard %s started", projection.name, shard)

    async def _stop(self, slot: Slot) -> None:
        task = self.workers.pop(slot)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        self.metrics.owned.labels(projection=slot[0], shard=str(slot[1])).set(0)
        await self.leases.release(self._key(slot))

    async def _stop_all(self) -> None:
        for slot in list(self.workers):
            await self._stop(slot)


async def run_projectors(
    resources: Resources,
    names: Iterable[str] | None = None,
    *,
    options: ProjectorOptions | None = None,
    metrics: ProjectionMetrics | None = None,
) -> None:
    """Run the named projections' live projectors (all by default) until cancelled."""
    side = ReadSide.from_resources(resources)
    service = ProjectorService(side, select(names), options=options, metrics=metrics)
    await service.run()
