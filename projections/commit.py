"""Applying a batch: read-model changes and the new checkpoint in one transaction.

The checkpoint update comes first and is guarded by the position this process read
(``… WHERE position = $old``): if another owner moved it, zero rows match, the transaction is
rolled back and nothing is applied twice. It also takes the checkpoint row's lock before any
read-model row, so two owners of one shard serialise instead of deadlocking.

A live batch also takes the projection's registry row ``FOR SHARE`` and checks that its table
version is still the active one: a rebuild's switch (``FOR UPDATE``) waits for such batches and
every later batch sees the new version, so the live projector follows the switch.

No event is ever stepped over here: one the projection cannot apply (see ``projections.halts``)
commits what precedes it and raises ``EventRejected``, unless an operator's skip names it.
"""

from __future__ import annotations

import contextlib
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
from projections.halts import EventRejected, load_skips
from projections.metrics import projection_metrics
from projections.projection import Projection
from projections.reading import Batch, Entry, ShardReader, fields_of, position_of

if TYPE_CHECKING:
    from readmodels.db import Conn

log = logging.getLogger(__name__)

# Errors caused by the data of an event, not by the database being unreachable or our SQL
# being wrong: the event is rejected (the shard stops at it), never silently skipped.
# UnicodeEncodeError: text the driver cannot encode (a lone surrogate), refused before sending.
EVENT_DATA_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, UnicodeError)


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
    event_id: str | None = None,
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
            "UPDATE checkpoints SET position = $4, event_id = COALESCE($6, event_id), updated_at = now()"
            " WHERE projection = $1 AND suffix = $2 AND shard = $3 AND position = $5",
            projection.name,
            suffix,
            shard,
            new,
            old,
            event_id,
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

    An event that cannot be applied (``EventRejected``: undecodable, unknown, its handler
    raised, or the database rejects its rows) stops the batch there: the entries before it are
    committed with their checkpoint, and the error is raised. Operator skips are honoured.
    """
    shard = batch.shard
    started_ns = time.time_ns()
    skips = await load_skips(conn, projection.name, shard, batch.after, batch.last_position)
    entries, rejected = batch.entries, None
    try:
        folded = fold(projection, reader, shard, entries, skips)
    except EventRejected as exc:
        rejected = exc
        entries = [e for e in entries if position_of(e[0]) < exc.position]
        folded = fold(projection, reader, shard, entries, skips)
    last = position_of(entries[-1][0]) if entries else batch.after
    outcome = Outcome(last, folded.counts)
    try:
        if last > batch.after:
            await commit(
                conn, projection, suffix, shard, batch.after, last, folded.changes,
                live_version=live_version, event_id=_event_id(entries[-1]),
            )
            _observe(projection.name, shard, entries, started_ns, live=live_version is not None)
    except EVENT_DATA_ERRORS:
        log.warning("%s shard %s: batch rejected, applying one by one", projection.name, shard)
        del folded
        outcome = await _one_by_one(
            conn, projection, reader, suffix, shard, batch.after, entries, skips, live_version
        )
    if rejected is not None:
        raise rejected
    return outcome


async def _one_by_one(
    conn: Conn,
    projection: Projection,
    reader: ShardReader,
    suffix: str,
    shard: int,
    after: int,
    entries: list[Entry],
    skips: dict[int, str],
    live_version: int | None,
) -> Outcome:
    """Commit ``entries`` one transaction each, up to the one whose rows the database refuses
    (raised as ``EventRejected``)."""
    total, position = Counts(), after
    for entry in entries:
        single = fold(projection, reader, shard, [entry], skips)
        try:
            await commit(
                conn, projection, suffix, shard, position, position_of(entry[0]),
                single.changes, live_version=live_version, event_id=_event_id(entry),
            )
        except EVENT_DATA_ERRORS as exc:
            raise EventRejected(
                projection.name,
                shard,
                position_of(entry[0]),
                kind="database",
                error=f"{type(exc).__name__}: {exc}",
                event_id=fields_of(entry).get("id"),
                event_type=fields_of(entry).get("type"),
            ) from exc
        total.add(single.counts)
        position = position_of(entry[0])
    return Outcome(position, total)


def _observe(name: str, shard: int, entries: Sequence[Entry],
             start_ns: int, *, live: bool) -> None:
    """Metrics of a committed batch; with tracing on, one span per traced event of it, child of
    the event's own context, timed as the batch's fold and transaction."""
    end_ns = time.time_ns()
    metrics = projection_metrics()
    metrics.batches.labels(name).observe((end_ns - start_ns) / 1e9)
    if live and entries:  # a rebuild's old events say nothing about the live lag
        with contextlib.suppress(ValueError):
            appended = float(fields_of(entries[-1]).get("ts", "0"))
            metrics.lag_seconds.labels(name, str(shard)).set(max(0.0, end_ns / 1e9 - appended))
    if not tracing.enabled():
        return
    for entry in entries:
        entry_id, fields = entry[0], fields_of(entry)
        meta = orjson.loads(fields.get("meta") or "{}")
        carrier = meta.get("trace") if isinstance(meta, dict) else None
        if carrier:
            tracing.record_span(
                carrier, f"projection {name}", start_ns=start_ns, end_ns=end_ns,
                attributes={"eco2.projection": name, "eco2.shard": shard,
                            "eco2.position": position_of(entry_id), "eco2.batch.size": len(entries)},
            )


def _event_id(entry: Entry) -> str | None:
    """The event id the checkpoint records with its position (see ``checkpoint_check``)."""
    return fields_of(entry).get("id")
