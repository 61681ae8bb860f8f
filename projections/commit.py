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
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg
import orjson

from eventstore import tracing
from projections.changes import Changes
from projections.fold import Counts, fold
from projections.projection import Projection
from projections.reading import Batch, ShardReader, position_of

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
    counts: Counts


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
        # No need to wait for the WAL flush: the changes and their checkpoint commit together,
        # so a crash that loses this transaction loses its checkpoint too, and the batch is
        # applied again from the log. Readers see the commit at once either way.
        await conn.execute("SET LOCAL synchronous_commit = off")
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
    reader: ShardReader,
    suffix: str,
    batch: Batch,
    *,
    live_version: int | None = None,
) -> Outcome:
    """Apply ``batch`` (whose checkpoint is ``batch.after``) in one transaction.

    If the database rejects the batch's data, the entries are applied one transaction each and
    only the offending events are skipped, so one bad event never stalls the shard.
    """
    shard = batch.shard
    started_ns = time.time_ns()
    folded = fold(projection, reader, shard, batch.entries)
    try:
        await commit(
            conn,
            projection,
            suffix,
            shard,
            batch.after,
            batch.last_position,
            folded.changes,
            live_version=live_version,
        )
        if tracing.enabled():
            _trace(projection.name, shard, batch.entries, started_ns)
        return Outcome(batch.last_position, folded.counts)
    except EVENT_DATA_ERRORS:
        log.warning("%s shard %s: batch rejected, applying one by one", projection.name, shard)
    del folded
    total, position = Counts(), batch.after
    for entry in batch.entries:
        single = fold(projection, reader, shard, [entry])
        try:
            await commit(
                conn,
                projection,
                suffix,
                shard,
                position,
                position_of(entry[0]),
                single.changes,
                live_version=live_version,
            )
        except EVENT_DATA_ERRORS:
            log.exception(
                "%s: event at shard %s position %s rejected; skipped",
                projection.name,
                shard,
                position_of(entry[0]),
            )
            await commit(
                conn,
                projection,
                suffix,
                shard,
                position,
                position_of(entry[0]),
                projection.changes(),
                live_version=live_version,
            )
            single.counts.failed += single.counts.applied
            single.counts.applied = 0
        total.add(single.counts)
        position = position_of(entry[0])
    return Outcome(batch.last_position, total)


def _trace(name: str, shard: int, entries: Sequence[tuple[str, dict[str, str]]], start_ns: int) -> None:
    """One span per traced event of a committed batch, child of the event's own context, timed
    as the batch's fold and transaction (the work that event took part in)."""
    end_ns = time.time_ns()
    for entry_id, fields in entries:
        meta = orjson.loads(fields.get("meta") or "{}")
        carrier = meta.get("trace") if isinstance(meta, dict) else None
        if carrier:
            tracing.record_span(
                carrier, f"projection {name}", start_ns=start_ns, end_ns=end_ns,
                attributes={"eco2.projection": name, "eco2.shard": shard,
                            "eco2.position": position_of(entry_id), "eco2.batch.size": len(entries)},
            )
