"""Checkpoints are (position, event id), verified against the log before a projector reads on.

If Redis loses its tail (AOF ``everysec`` and a power loss, a failover of an external Redis),
new events reuse positions a projector already checkpointed and it would never read them. So a
projector checks, on start and before every batch, that the log's head is not below its
checkpoint and that the event at the checkpoint is the one it applied there. A mismatch stops
that (projection, shard) loudly: an error log, ``eco2_projection_checkpoint_mismatch`` = 1 and a
row in ``checkpoint_mismatches`` (shown by ``/api/v1/admin/overview`` and ``eco2 projections
status``). ``eco2 projections rebuild NAME`` recovers: the new table version's checkpoints
are built from the log as it is now, and the projector, re-checking every few seconds, goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Gauge

from projections.reading import ShardReader

if TYPE_CHECKING:
    from readmodels.db import Conn


class CheckpointMismatch(Exception):
    """The log no longer holds the event the checkpoint was taken at."""

    def __init__(self, position: int, detail: str) -> None:
        super().__init__(detail)
        self.position = position


async def verify_checkpoint(
    reader: ShardReader, shard: int, position: int, event_id: str | None
) -> None:
    """Raise ``CheckpointMismatch`` unless the log still agrees with (position, event id)."""
    if position == 0:
        return
    head = await reader.head(shard)
    if head < position:
        raise CheckpointMismatch(
            position, f"the log's head {head} is below the checkpoint {position}"
            " (Redis lost its tail?)"
        )
    if event_id is None:
        return  # a checkpoint written before event ids were recorded
    found = await reader.event_id_at(shard, position)
    if found != event_id:
        raise CheckpointMismatch(
            position, f"position {position} holds event {found}, the checkpoint was taken at"
            f" {event_id} (Redis lost its tail and reused positions?)"
        )


async def record_mismatch(conn: Conn, projection: str, shard: int, exc: CheckpointMismatch) -> None:
    await conn.execute(
        "INSERT INTO checkpoint_mismatches (projection, shard, position, detail)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (projection, shard) DO UPDATE"
        " SET position = EXCLUDED.position, detail = EXCLUDED.detail, at = now()",
        projection, shard, exc.position, str(exc),
    )


async def clear_mismatch(conn: Conn, projection: str, shard: int) -> None:
    await conn.execute(
        "DELETE FROM checkpoint_mismatches WHERE projection = $1 AND shard = $2", projection, shard
    )


async def mismatches(conn: Conn) -> dict[tuple[str, int], str]:
    """Every stopped (projection, shard) and why."""
    rows = await conn.fetch("SELECT projection, shard, detail FROM checkpoint_mismatches")
    return {(r["projection"], int(r["shard"])): r["detail"] for r in rows}


_gauges: dict[int, Gauge] = {}


def mismatch_gauge(registry: CollectorRegistry | None = None) -> Gauge:
    """``eco2_projection_checkpoint_mismatch{projection,shard}``: 1 while stopped on one."""
    registry = registry or REGISTRY
    gauge = _gauges.get(id(registry))
    if gauge is None:
        gauge = _gauges[id(registry)] = Gauge(
            "eco2_projection_checkpoint_mismatch",
            "1 while the projector is stopped because the log disagrees with its checkpoint.",
            ("projection", "shard"),
            registry=registry,
        )
    return gauge
