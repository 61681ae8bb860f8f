"""Running the live projectors of a process: leases decide which shards it serves.

Every ``lease_retry_s`` the service checks its lock session, counts the live projector
processes, gives back leases above its fair share (so a process that just started gets its
part), tries the free ones up to that share, and starts a ``ShardProjector`` for each one it
gets. Several processes therefore spread the shards between them, and when one dies its
session's locks are freed and the others (whose share has grown) take its shards over. When the
lock session itself is lost (Postgres restarted or unreachable), every projector of the process
stops at once: its leases are gone, and it resumes only after re-acquiring them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable

from projections.context import ReadSide
from projections.leases import LeaseHolder, lease_key
from projections.metrics import ProjectionMetrics, projection_metrics
from projections.projection import Projection
from projections.worker import Backoff, ProjectorOptions, ShardProjector
from readmodels.migrate import migrate

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
        self.workers: dict[Slot, tuple[ShardProjector, asyncio.Task[None]]] = {}
        self._session = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def owned(self) -> set[Slot]:
        """The (projection, shard) pairs this process serves right now."""
        return {slot for slot, (_, task) in self.workers.items() if not task.done()}

    async def run(self) -> None:
        """Serve as many shards as the leases allow, forever (until cancelled)."""
        backoff = Backoff(self.options)
        self._task = asyncio.current_task()
        try:
            await self._migrate(backoff)
            while not self._stopping:
                healthy = await self._tick()
                if healthy:
                    backoff.reset()
                    await asyncio.sleep(self.options.lease_retry_s)
                else:
                    await asyncio.sleep(backoff.next())
        finally:
            # To its end even through ``finish``'s repeated cancels: a cancel inside it left
            # projectors running or the lease session open (no other process took over).
            closing = asyncio.ensure_future(self._close())
            while not closing.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(closing)
            closing.result()

    async def _close(self) -> None:
        try:
            await self._stop_all()
        finally:
            await self.leases.close()

    async def stop(self) -> None:
        """Stop every projector, release the leases and make ``run`` return."""
        self._stopping = True
        if self._task is not None:
            await finish(self._task)

    async def drain(self, grace_s: float) -> None:
        """Take no more shards, let each projector finish the batch it is applying (its commit
        carries the checkpoint, so an unfinished one simply rolls back), release the leases and
        return; whatever still runs after ``grace_s`` is cancelled (``stop``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        self._stopping = True
        for worker, _ in self.workers.values():
            worker.stop()
        tasks = [task for _, task in self.workers.values() if not task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        if self._task is not None and not self._task.done():
            # ``run`` leaves its loop at the next tick and releases every lease itself.
            await asyncio.wait({self._task}, timeout=max(deadline - loop.time(), 0.0))
        await self.stop()

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
        for slot, (_, task) in list(self.workers.items()):
            if task.done():  # only on a bug: run() never returns; free the shard for others
                await self._stop(slot)
        try:
            await self._balance()
        except Exception as exc:
            log.warning("lease attempt failed: %s", exc)
            return False
        return True

    async def _balance(self) -> None:
        """Hold about a fair share of the leases: give back the excess (so a process that just
        joined gets its part), then try the free ones up to the share."""
        if self._stopping:
            return  # draining: take nothing new
        slots = [(p, s) for p in self.projections for s in range(self.side.layout.shards)]
        share = math.ceil(len(slots) / await self.leases.members())
        for slot in sorted(self.workers)[share:]:
            await self._stop(slot)
        for projection, shard in slots:
            if len(self.workers) >= share:
                return
            slot = (projection.name, shard)
            if slot not in self.workers and await self.leases.try_acquire(self._key(slot)):
                self._start(projection, shard)

    def _key(self, slot: Slot) -> int:
        return lease_key(self.side.schema, *slot)

    def _start(self, projection: Projection, shard: int) -> None:
        worker = ShardProjector(self.side, projection, shard, self.options, self.metrics)
        slot = (projection.name, shard)
        task = asyncio.create_task(worker.run(), name=f"projector-{projection.name}-{shard}")
        self.workers[slot] = (worker, task)
        self.metrics.owned.labels(projection=projection.name, shard=str(shard)).set(1)
        log.info("projector %s shard %s started", projection.name, shard)

    async def _stop(self, slot: Slot) -> None:
        worker, task = self.workers.pop(slot)
        worker.stop()
        await finish(task)
        self.metrics.owned.labels(projection=slot[0], shard=str(slot[1])).set(0)
        await self.leases.release(self._key(slot))

    async def _stop_all(self) -> None:
        for slot in list(self.workers):
            await self._stop(slot)


async def finish(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it is done.

    Cancels again while it runs: on Python 3.11 a cancellation that races with a finishing
    ``wait_for`` inside a driver can be swallowed. Waits with ``asyncio.wait`` so the task's
    CancelledError is never mistaken for a cancellation of the caller.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.2)
