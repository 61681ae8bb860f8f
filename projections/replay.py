"""Replaying shard logs into a table version that readers do not see (rebuild, verify).

All shards are replayed concurrently, each in large batches, one transaction per batch with the
version's own checkpoint: a replay that is interrupted resumes where it stopped, and nothing
about the live version is touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import asyncpg

from projections.commit import Outcome, apply_batch, ensure_checkpoints, load_checkpoints
from projections.context import ReadSide
from projections.projection import Projection
from projections.reading import Batch, ShardReader, undecoded_client

ProgressCallback = Callable[["ReplayProgress"], None]
ROLLBACK_RETRIES = 5
# A read waits while the loop folds another shard's batch (CPU, up to seconds on a busy
# machine), and that wait counts against the read's timeout (redis-py's default: 5 s).
REPLAY_READ_TIMEOUT_S = 60.0


@dataclass
class ReplayProgress:
    """Positions replayed so far against the positions to reach, summed over shards."""

    start: dict[int, int]
    position: dict[int, int]
    target: dict[int, int]
    applied: int = 0
    skipped: int = 0
    started_at: float = field(default_factory=time.perf_counter)

    @property
    def done(self) -> int:
        return sum(self.position[s] - self.start[s] for s in self.position)

    @property
    def total(self) -> int:
        return sum(max(self.target[s], self.position[s]) - self.start[s] for s in self.target)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started_at

    @property
    def rate(self) -> float:
        """Log entries replayed per second."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0


async def replay(
    side: ReadSide,
    projection: Projection,
    suffix: str,
    targets: Mapping[int, int],
    *,
    batch_size: int = 5000,
    progress: ReplayProgress | None = None,
    on_progress: ProgressCallback | None = None,
) -> ReplayProgress:
    """Replay every shard of ``targets`` from the version's checkpoint up to its target."""
    async with side.pool.acquire() as conn:
        await ensure_checkpoints(conn, projection.name, suffix, targets)
        positions = await load_checkpoints(conn, projection.name, suffix)
    if progress is None:
        progress = ReplayProgress(dict(positions), dict(positions), dict(targets))
    else:
        progress.target.update(targets)
    async with contextlib.AsyncExitStack() as stack:
        redis = side.redis
        if side.redis_url is not None:  # a client of its own, reading entries undecoded
            redis = await stack.enter_async_context(
                undecoded_client(side.redis_url, timeout_s=REPLAY_READ_TIMEOUT_S)
            )
        reader = ShardReader(
            redis, side.layout, side.registry, projection.wire_names(side.registry),
            side.archive,
        )

        async def one_shard(shard: int) -> None:
            position = positions.get(shard, 0)
            while position < targets[shard]:
                batch = await reader.read(shard, position, batch_size, upto=targets[shard])
                if batch.size == 0:  # the log ends before the target (trimmed or not written)
                    return
                outcome = await _apply_retrying(side, projection, reader, suffix, batch)
                position = outcome.position
                progress.position[shard] = position
                progress.applied += outcome.counts.applied
                progress.skipped += outcome.counts.skipped
                if on_progress is not None:
                    on_progress(progress)

        await asyncio.gather(*(one_shard(shard) for shard in targets))
    return progress


async def _apply_retrying(
    side: ReadSide, projection: Projection, reader: ShardReader, suffix: str, batch: Batch
) -> Outcome:
    for attempt in range(ROLLBACK_RETRIES):
        try:
            async with side.pool.acquire() as conn:
                return await apply_batch(conn, projection, reader, suffix, batch)
        except asyncpg.TransactionRollbackError:  # deadlock or serialization: try again
            if attempt == ROLLBACK_RETRIES - 1:
                raise
            await asyncio.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


async def heads(side: ReadSide) -> dict[int, int]:
    """The last position of every shard log."""
    reader = ShardReader(side.redis, side.layout, side.registry, frozenset())
    return {shard: await reader.head(shard) for shard in range(side.layout.shards)}
