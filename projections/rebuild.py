"""Rebuild: a new table version from position 0 of every shard, switched in without downtime.

1. Create ``<model>_v<k+1>`` (readers keep using the active ``v<k>`` through the views).
2. Replay every shard up to its head, in large batches; repeat against the new heads until the
   remaining gap is small (events keep arriving meanwhile).
3. Switch, in one transaction: lock the projection's registry row (live batches wait), replay
   the new version up to the live version's checkpoints (so readers never step back), point the
   views at the new tables and mark it active. The live projector's next batch sees the new
   active version and continues from the new version's checkpoints.
4. Drop the old tables (best effort; a reader still inside them only delays this).

One rebuild per projection at a time (an advisory lock held by the rebuilding session).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from projections.commit import apply_batch, ensure_checkpoints, load_checkpoints
from projections.context import ReadSide
from projections.parallel import parallel_replay
from projections.projection import Projection
from projections.reading import ShardReader
from projections.replay import ProgressCallback, ReplayProgress, heads, replay
from projections.status import projection_status
from readmodels import versions
from readmodels.db import advisory_key, connect

if TYPE_CHECKING:
    from readmodels.db import Conn

log = logging.getLogger(__name__)

SWITCH_MARGIN = 2_000  # the last catch-up before the switch is at most about this many events
MAX_ROUNDS = 20


class RebuildBusy(RuntimeError):
    """Another rebuild of the same projection is running."""


def default_workers(shards: int) -> int:
    """Replay processes for a rebuild: one per CPU, at most one per shard."""
    return max(1, min(shards, os.cpu_count() or 1))


@dataclass(frozen=True)
class RebuildReport:
    name: str
    version: int
    previous: int | None
    entries: int  # log entries replayed (all shards)
    applied: int  # events that changed the new tables
    skipped: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0


@contextlib.asynccontextmanager
async def exclusive(side: ReadSide, projection: Projection) -> AsyncIterator[None]:
    """Hold the projection's rebuild lock for the duration (raises ``RebuildBusy``)."""
    conn = await connect(side.dsn, side.schema, application="eco2-rebuild")
    try:
        key = advisory_key("eco2-rebuild", side.schema, projection.name)
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            raise RebuildBusy(f"a rebuild of {projection.name} is already running")
        yield
    finally:
        await conn.close()


async def rebuild(
    side: ReadSide,
    projection: Projection,
    *,
    batch_size: int = 5000,
    workers: int = 1,
    on_progress: ProgressCallback | None = None,
    drop_previous: bool = True,
) -> RebuildReport:
    """Build and switch to a new version of ``projection``'s tables; see the module doc.

    ``workers`` > 1 replays the bulk (up to the heads at the start) in that many processes.
    """
    async with exclusive(side, projection):
        group = projection.group
        shards = range(side.layout.shards)
        async with side.pool.acquire() as conn:
            await _prune(conn, projection)
            version = await versions.create_version(conn, group, projection.version)
            suffix = versions.suffix_of(version)
            await ensure_checkpoints(conn, projection.name, suffix, shards)
        targets = await heads(side)
        progress = ReplayProgress({s: 0 for s in shards}, {s: 0 for s in shards}, targets)
        for round_ in range(MAX_ROUNDS):
            if round_ == 0 and workers > 1 and side.redis_url is not None:
                await parallel_replay(
                    side,
                    projection,
                    suffix,
                    targets,
                    progress,
                    workers=workers,
                    batch_size=batch_size,
                    on_progress=on_progress,
                )
            else:
                await replay(
                    side,
                    projection,
                    suffix,
                    targets,
                    batch_size=batch_size,
                    progress=progress,
                    on_progress=on_progress,
                )
            targets = await heads(side)
            if all(targets[s] - progress.position[s] <= SWITCH_MARGIN for s in shards):
                break
        previous = await _switch(side, projection, version, batch_size)
        if drop_previous and previous is not None:
            await _drop_quietly(side, projection, previous)
        return RebuildReport(
            projection.name,
            version,
            previous,
            progress.done,
            progress.applied,
            progress.skipped,
            progress.elapsed,
        )


async def rebuild_stale(
    side: ReadSide, projections: list[Projection], *, batch_size: int = 5000
) -> list[RebuildReport]:
    """Rebuild each of ``projections`` whose active tables an older release built (the first
    ``eco2 up`` after an upgrade); returns what was rebuilt."""
    reports = []
    for projection in projections:
        async with side.pool.acquire() as conn:
            stale = (await projection_status(conn, projection)).stale
        if stale:
            log.warning("%s: tables built by older code; rebuilding from the log", projection.name)
            reports.append(await rebuild(side, projection, batch_size=batch_size))
    return reports


async def _switch(
    side: ReadSide, projection: Projection, version: int, batch_size: int
) -> int | None:
    name, suffix = projection.name, versions.suffix_of(version)
    reader = ShardReader(
        side.redis, side.layout, side.registry, projection.wire_names(side.registry),
        side.archive,
    )
    async with side.pool.acquire() as conn, conn.transaction():
        previous = await versions.lock_active_version(conn, name)
        live = (
            {}
            if previous is None
            else await load_checkpoints(conn, name, versions.suffix_of(previous))
        )
        mine = await load_checkpoints(conn, name, suffix)
        for shard, position in mine.items():
            while position < live.get(shard, 0):
                batch = await reader.read(shard, position, batch_size, upto=live[shard])
                if batch.size == 0:
                    break
                position = (await apply_batch(conn, projection, reader, suffix, batch)).position
        await versions.activate(conn, projection.group, version)
    log.info("%s: readers switched from v%s to v%s", name, previous, version)
    return previous


async def _prune(conn: Conn, projection: Projection) -> None:
    """Drop leftovers: versions from interrupted rebuilds and retired ones still on disk."""
    for info in await versions.list_versions(conn, projection.name):
        if info.state in ("building", "retired"):
            await versions.drop_version(conn, projection.group, info.version)


async def _drop_quietly(side: ReadSide, projection: Projection, version: int) -> None:
    try:
        async with side.pool.acquire() as conn:
            await conn.execute("SET lock_timeout = '5s'")
            try:
                await versions.drop_version(conn, projection.group, version)
            finally:
                await conn.execute("RESET lock_timeout")
    except Exception as exc:  # a long reader holds the old tables: the next rebuild drops them
        log.warning("%s v%s not dropped yet: %s", projection.name, version, exc)
