"""Applying a batch: read-model changes and the new checkpoint in one transaction.

The checkpoint update comes first and is guarded by the position this process read
(``… WHERE position = $old``): if another owner moved it, zero rows match, the transaction is
rolled back and nothing is applied twice. It also takes the checkpoint row's lock before any
read-model row, so two owners of one shard serialise instead of deadlocking.

A live batch also takes the projection's registry row ``FOR SHARE`` and checks that its table
version is still the active one: a rebuild's switch (``FOR UPDATE``) waits for such batches and
every later batch sees the new version, so the live projector follows the switch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from projections.changes import Changes
from projections.projection import Projection
from projections.reading import Batch, Decoded

if TYPE_CHECKING:
    from readmodels.db import Conn

log = logging.getLogger(__name__)

# Errors caused by the data of an event, not by the database being unreachable or our SQL
# being wrong: the event is skipped (and counted) rather than blocking the shard forever.
EVENT_DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


class CommitRejected(Exception):
    """The batch was not applied; reload the checkpoint (and version) and read again."""


class CheckpointMoved(CommitRejected):
    """Another owner advanced this checkpoint first."""


class VersionSwitched(CommitRejected):
    """Readers were switched to another table version (a rebuild finished)."""


@dataclass(frozen=True)
class Outcome:
    position: int
    applied: int  # events whose changes were written
    failed: int  # events skipped because their handler or their rows failed


async def ensure_checkpoints(conn: Conn, name: str, suffix: str, shards: Iterable[int]) -> None:
    await conn.executemany(
        "INSERT INTO checkpoints (projection, suffix, shard) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING",
        [(name, suffix, shard) for shard in shards],
    )


async def load_checkpoints(conn: Conn, name: str, suffix: str) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT shard, position FROM checkpoints WHERE projection = $1 AND suffix = $2",
        name,
        suffix,
    )
    return {int(r["shard"]): int(r["position"]) for r in rows}


def fold(projection: Projection, events: Sequence[Decoded]) -> tuple[Changes, int]:
    """The changes of ``events``; a handler that raises skips its event (returned count)."""
    changes = Changes(projection.group)
    failed = 0
    for item in events:
        try:
            projection.apply(changes, item.message, item.envelope)
        except Exception:
            failed += 1
            log.exception(
                "%s: handler failed on %s at shard %s position %s; skipped",
                projection.name,
                type(item.message).__name__,
                item.envelope.shard,
                item.envelope.position,
            )
    return changes, failed


async def commit(
    conn: Conn,
    projection: Projection,
    suffix: str,
    shard: int,
    old: int,
    new: int,
    changes: Changes,
    *,
    live_version: int | None,
) -> None:
    """Write ``changes`` and move the checkpoint ``old → new`` atomically (or raise)."""
    async with conn.transaction():
        if live_version is not None:
            active = await conn.fetchval(
                "SELECT active_version FROM projections WHERE name = $1 FOR SHARE",
                projection.name,
            )
            if active != live_version:
                raise VersionSwitched(f"{projection.name}: v{live_version} → v{active}")
        status = await conn.execute(
            "UPDATE checkpoints SET position = $4, updated_at = now()"
            " WHERE projection = $1 AND suffix = $2 AND shard = $3 AND position = $5",
            projection.name,
            suffix,
            shard,
            new,
            old,
        )
        if status != "UPDATE 1":
            raise CheckpointMoved(f"{projection.name}/{suffix} shard {shard} is not at {old}")
        await changes.write(conn, suffix)


async def apply_batch(
    conn: Conn,
    projection: Projection,
    suffix: str,
    shard: int,
    batch: Batch,
    *,
    live_version: int | None = None,
) -> Outcome:
    """Apply ``batch`` (whose checkpoint is ``batch.after``) in one transaction.

    If the database rejects the batch's data, the events are applied one transaction each and
    only the offending ones are skipped, so one bad event never stalls the shard.
    """
    changes, failed = fold(projection, batch.events)
    try:
        await commit(
            conn,
            projection,
            suffix,
            shard,
            batch.after,
            batch.last_position,
            changes,
            live_version=live_version,
        )
        return Outcome(batch.last_position, len(batch.events) - failed, failed)
    except EVENT_DATA_ERRORS:
        log.warning("%s shard %s: batch rejected, applying one by one", projection.name, shard)
    position, applied, failed = batch.after, 0, 0
    for item in batch.events:
        assert item.envelope.position is not None
        single, bad = fold(projection, [item])
        try:
            await commit(
                conn,
                projection,
                suffix,
                shard,
                position,
                item.envelope.position,
                single,
                live_version=live_version,
            )
            applied += 1 - bad
            failed += bad
        except EVENT_DATA_ERRORS:
            log.exception(
                "%s: event at shard %s position %s rejected; skipped",
                projection.name,
                shard,
                item.envelope.position,
            )
            await commit(
                conn,
                projection,
                suffix,
                shard,
                position,
                item.envelope.position,
                Changes(projection.group),
                live_version=live_version,
            )
            failed += 1
        position = item.envelope.position
    if position < batch.last_position:
        await commit(
            conn,
            projection,
            suffix,
            shard,
            position,
            batch.last_position,
            Changes(projection.group),
            live_version=live_version,
        )
    return Outcome(batch.last_position, applied, failed)
