"""The live projector of one (projection, shard): log → batch → one transaction → repeat.

It never exits on its own: when Redis or Postgres is unavailable it backs off and resumes from
the checkpoint stored in Postgres, which is the only state that matters (a batch that was being
applied when the process died was rolled back with its checkpoint). It never steps over an event
either: at one it cannot apply it halts (``projections.halts``), visibly, and looks again every
``halt_retry_s`` — until a release can apply it or an operator's skip names it.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass

from projections.checkpoint_check import (
    CheckpointMismatch,
    clear_mismatch,
    mismatch_gauge,
    record_mismatch,
    verify_checkpoint,
)
from projections.commit import CommitRejected, apply_batch, ensure_checkpoints
from projections.context import ReadSide
from projections.halts import EventRejected, clear_halt, record_halt
from projections.metrics import ProjectionMetrics
from projections.projection import Projection
from projections.reading import Batch, ShardReader, fields_of, position_of
from readmodels.versions import active_version, suffix_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProjectorOptions:
    batch_size: int = 1000
    block_ms: int = 1000  # longest idle wait for new events before re-reading the state
    lease_retry_s: float = 2.0  # how often a process retries the leases it does not hold
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 5.0
    halt_retry_s: float = 5.0  # a halted shard looks again this often (a skip, a new release)


class Backoff:
    """Exponential delays between retries, reset after a success."""

    def __init__(self, options: ProjectorOptions) -> None:
        self.options = options
        self.delay = options.backoff_initial_s

    def reset(self) -> None:
        self.delay = self.options.backoff_initial_s

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.options.backoff_max_s)
        return delay


class StaleTables(Exception):
    """The active tables were built by another code version of the projection."""


class ShardProjector:
    def __init__(
        self,
        side: ReadSide,
        projection: Projection,
        shard: int,
        options: ProjectorOptions,
        metrics: ProjectionMetrics,
    ) -> None:
        self.side = side
        self.projection = projection
        self.shard = shard
        self.options = options
        self.metrics = metrics
        self.reader = ShardReader(
            side.redis, side.layout, side.registry, projection.wire_names(side.registry),
            side.archive,
        )
        self.labels = {"projection": projection.name, "shard": str(shard)}
        self.position = 0
        self.event_id: str | None = None  # of the event at ``position`` (checkpoint_check)
        self.version = 0
        self.stopping = False
        self.halted: EventRejected | None = None
        self._halt_recorded = True  # maybe, by a previous owner: cleared at the first progress
        self.mismatch: str | None = None  # why this projector is stopped, if it is

    def stop(self) -> None:
        """Ask ``run`` to return at its next step (cancel the task to interrupt a wait)."""
        self.stopping = True

    async def run(self) -> None:
        """Project until stopped or cancelled."""
        backoff = Backoff(self.options)
        while not self.stopping:
            try:
                await self._run_once(backoff)
            except CommitRejected as exc:
                log.info("%s shard %s: %s; reloading", self.projection.name, self.shard, exc)
                self.metrics.errors.labels(**self.labels, kind="rejected").inc()
            except EventRejected as exc:
                await self._halt(exc)
                await asyncio.sleep(self.options.halt_retry_s)
            except CheckpointMismatch as exc:
                await self._stopped_on(exc)
                await asyncio.sleep(self.options.lease_retry_s)  # then check again
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = "stale" if isinstance(exc, StaleTables) else type(exc).__name__
                self.metrics.errors.labels(**self.labels, kind=kind).inc()
                log.warning(
                    "%s shard %s: %s: %s (retrying)",
                    self.projection.name,
                    self.shard,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(backoff.next())

    async def _halt(self, rejected: EventRejected) -> None:
        """Stop at ``rejected``'s event: loudly (log, metric, a row /ops shows)."""
        if self.halted is None or self.halted.position != rejected.position:
            log.error("%s", rejected)
        self.halted = rejected
        self._halt_recorded = True
        self.metrics.halted.labels(**self.labels).set(1)
        try:
            async with self.side.pool.acquire() as conn:
                await record_halt(conn, suffix_of(self.version), rejected)
        except Exception as exc:  # Postgres away: the log line and the metric still say it
            log.warning("could not record the halt of %s: %s", self.labels, exc)

    async def _resume(self) -> None:
        """Moved on: the shard's halt (ours, or a previous owner's) is over."""
        if not self._halt_recorded:
            return
        if self.halted is not None:
            log.warning(
                "%s shard %s moved past position %s",
                self.projection.name, self.shard, self.halted.position,
            )
        async with self.side.pool.acquire() as conn:
            await clear_halt(conn, self.projection.name, suffix_of(self.version), self.shard)
        self.halted, self._halt_recorded = None, False
        self.metrics.halted.labels(**self.labels).set(0)

    async def _load(self) -> tuple[int, str, int]:
        name = self.projection.name
        async with self.side.pool.acquire() as conn:
            version = await active_version(conn, name)
            if version is None:
                raise StaleTables(f"{name} has no tables yet (migrations not applied)")
            code = await conn.fetchval(
                "SELECT code_version FROM projection_versions WHERE name = $1 AND version = $2",
                name,
                version,
            )
            if code != self.projection.version:
                raise StaleTables(
                    f"{name} v{version} was built by code version {code}, this is"
                    f" {self.projection.version}: run `eco2 projections rebuild {name}`"
                )
            suffix = suffix_of(version)
            await ensure_checkpoints(conn, name, suffix, [self.shard])
            row = await conn.fetchrow(
                "SELECT position, event_id FROM checkpoints"
                " WHERE projection = $1 AND suffix = $2 AND shard = $3",
                name,
                suffix,
                self.shard,
            )
        assert row is not None
        self.event_id = row["event_id"]
        return version, suffix, int(row["position"])

    async def _run_once(self, backoff: Backoff) -> None:
        self.version, _, self.position = await self._load()
        await self._verify()
        follow = self.reader.follow(
            self.shard, self.position, self.options.batch_size, self.options.block_ms
        )
        async with aclosing(follow) as batches:
            async for batch in batches:
                if self.stopping:
                    return
                if batch.size == 0:  # nothing new within block_ms
                    await self._observe()
                    if await self.reader.head(self.shard) < self.position:
                        await self._verify()  # raises: the head fell below the checkpoint
                    return  # idle: re-read version and checkpoint, a rebuild may have switched
                await self._verify()
                await self._apply(batch)
                backoff.reset()
                if self.position != batch.last_position:
                    return  # the batch was not applied to its end: read on from the checkpoint

    async def _verify(self) -> None:
        """Check (position, event id) against the log; clears a recorded stop once it holds."""
        await verify_checkpoint(self.reader, self.shard, self.position, self.event_id)
        if self.mismatch is not None:
            async with self.side.pool.acquire() as conn:
                await clear_mismatch(conn, self.projection.name, self.shard)
            mismatch_gauge().labels(**self.labels).set(0)
            log.warning("%s shard %s: checkpoint agrees with the log again; projecting",
                        self.projection.name, self.shard)
            self.mismatch = None

    async def _stopped_on(self, exc: CheckpointMismatch) -> None:
        """Stop applying: say so once (log, metric, /ops row); ``run`` re-checks later."""
        if self.mismatch == str(exc):
            return
        self.mismatch = str(exc)
        log.error(
            "%s shard %s STOPPED: %s. Nothing is applied until `eco2 projections rebuild %s`.",
            self.projection.name, self.shard, exc, self.projection.name,
        )
        self.metrics.errors.labels(**self.labels, kind="checkpoint_mismatch").inc()
        mismatch_gauge().labels(**self.labels).set(1)
        try:
            async with self.side.pool.acquire() as conn:
                await record_mismatch(conn, self.projection.name, self.shard, exc)
        except Exception as db_exc:  # the log line and the metric already tell
            log.warning("could not record the mismatch: %s", db_exc)

    async def _apply(self, batch: Batch) -> None:
        async with self.side.pool.acquire() as conn:
            outcome = await apply_batch(
                conn,
                self.projection,
                self.reader,
                suffix_of(self.version),
                batch,
                live_version=self.version,
            )
        self.position = outcome.position
        # the id recorded with the new checkpoint (a halt may stop the batch short of its end)
        self.event_id = next((fields_of(entry).get("id") for entry in batch.entries
                              if position_of(entry[0]) == outcome.position), self.event_id)
        counts = outcome.counts
        self.metrics.applied.labels(**self.labels).inc(counts.applied)
        if counts.skipped:
            self.metrics.skipped.labels(**self.labels, reason="operator").inc(counts.skipped)
        await self._resume()
        await self._observe()

    async def _observe(self) -> None:
        head = await self.reader.head(self.shard)
        self.metrics.position.labels(**self.labels).set(self.position)
        self.metrics.lag.labels(**self.labels).set(max(head - self.position, 0))
