"""Events a projection cannot apply: the shard stops, loudly, until someone decides.

A projector never steps over an event on its own. When an event cannot be applied — a type this
release does not know (a newer release wrote it), an entry that does not decode, a handler that
raises, rows the database rejects — ``EventRejected`` stops that (projection, shard) at the
event: everything before it is committed, the checkpoint stays just before it, the halt is
recorded in ``projection_halts`` (shown on /ops, ``eco2 projections status``) and counted in
``eco2_projection_halted``. The projector retries every ``halt_retry_s``: a release that knows
the type (or a fixed handler) continues by itself.

Stepping over the event is an operator's decision, like a dead letter:
``eco2 projections skip NAME --shard S --position P --reason ...`` records it in
``projection_skips`` with the event's id, who and when. Every later fold — the live projector,
a rebuild, a verify — skips exactly that event, so a rebuild reproduces the choice. Other
stops (e.g. a checkpoint that no longer matches the log) can use the same halt record with
their own ``kind``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eventstore.reading import LogReader
    from readmodels.db import Conn


class EventRejected(Exception):
    """The event at ``position`` of ``shard`` cannot be applied by ``projection``."""

    def __init__(
        self,
        projection: str,
        shard: int,
        position: int,
        *,
        kind: str,  # unknown | malformed | handler | database
        error: str,
        event_id: str | None = None,
        event_type: str | None = None,
    ) -> None:
        self.projection = projection
        self.shard = shard
        self.position = position
        self.kind = kind
        self.error = error
        self.event_id = event_id
        self.event_type = event_type
        super().__init__(
            f"{projection} shard {shard} stopped at position {position}: event"
            f" {event_type or '?'} {event_id or '?'} cannot be applied ({kind}: {error}). Deploy"
            " a release that can apply it, or decide to skip it: eco2 projections skip"
            f" {projection} --shard {shard} --position {position} --reason '...'"
        )


@dataclass(frozen=True)
class Halt:
    projection: str
    suffix: str
    shard: int
    position: int
    event_id: str | None
    event_type: str | None
    kind: str
    error: str
    since: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "projection": self.projection, "shard": self.shard, "position": self.position,
            "event_id": self.event_id, "event_type": self.event_type, "kind": self.kind,
            "error": self.error, "since": self.since.isoformat(),
            "skip_command": f"eco2 projections skip {self.projection} --shard {self.shard}"
                            f" --position {self.position} --reason '...'",
        }


@dataclass(frozen=True)
class SkipDecision:
    projection: str
    shard: int
    position: int
    event_id: str
    event_type: str
    reason: str
    decided_by: str
    decided_at: datetime


async def load_skips(conn: Conn, name: str, shard: int, after: int, upto: int) -> dict[int, str]:
    """Skipped positions in ``(after, upto]`` → the event id each decision names."""
    rows = await conn.fetch(
        "SELECT position, event_id FROM projection_skips"
        " WHERE projection = $1 AND shard = $2 AND position > $3 AND position <= $4",
        name, shard, after, upto,
    )
    return {int(r["position"]): str(r["event_id"]) for r in rows}


async def record_skip(conn: Conn, decision: SkipDecision) -> SkipDecision:
    """Record ``decision`` (the first decision for a position stands); returns what stands."""
    row = await conn.fetchrow(
        "INSERT INTO projection_skips (projection, shard, position, event_id, event_type,"
        " reason, decided_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (projection, shard, position) DO UPDATE SET projection = EXCLUDED.projection"
        " RETURNING *",
        decision.projection, decision.shard, decision.position, decision.event_id,
        decision.event_type, decision.reason, decision.decided_by,
    )
    assert row is not None
    return SkipDecision(**{k: row[k] for k in SkipDecision.__dataclass_fields__})


async def list_skips(conn: Conn, name: str | None = None) -> list[SkipDecision]:
    rows = await conn.fetch(
        "SELECT * FROM projection_skips WHERE $1::text IS NULL OR projection = $1"
        " ORDER BY projection, shard, position",
        name,
    )
    return [SkipDecision(**{k: r[k] for k in SkipDecision.__dataclass_fields__}) for r in rows]


async def record_halt(conn: Conn, suffix: str, rejected: EventRejected) -> None:
    """The shard's projector stopped at ``rejected``'s event (kept since the first stop)."""
    await conn.execute(
        "INSERT INTO projection_halts (projection, suffix, shard, position, event_id,"
        " event_type, kind, error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (projection, suffix, shard) DO UPDATE SET position = EXCLUDED.position,"
        " event_id = EXCLUDED.event_id, event_type = EXCLUDED.event_type,"
        " kind = EXCLUDED.kind, error = EXCLUDED.error,"
        " since = CASE WHEN projection_halts.position = EXCLUDED.position"
        " THEN projection_halts.since ELSE now() END",
        rejected.projection, suffix, rejected.shard, rejected.position, rejected.event_id,
        rejected.event_type, rejected.kind, rejected.error[:4000],
    )


async def clear_halt(conn: Conn, name: str, suffix: str, shard: int) -> None:
    await conn.execute(
        "DELETE FROM projection_halts WHERE projection = $1 AND suffix = $2 AND shard = $3",
        name, suffix, shard,
    )


async def list_halts(conn: Conn, name: str | None = None) -> list[Halt]:
    """Current halts of the active table versions (a halt of a dropped version is history)."""
    rows = await conn.fetch(
        "SELECT h.* FROM projection_halts h JOIN projections p ON p.name = h.projection"
        " WHERE ($1::text IS NULL OR h.projection = $1)"
        " AND h.suffix = 'v' || p.active_version ORDER BY h.projection, h.shard",
        name,
    )
    return [Halt(**{k: r[k] for k in Halt.__dataclass_fields__}) for r in rows]


class SkipRefused(ValueError):
    """The skip cannot be recorded (no such event, or it names a position wrongly)."""


async def decide_skip(
    conn: Conn,
    log: LogReader,
    name: str,
    shard: int,
    position: int,
    *,
    reason: str,
    by: str,
) -> SkipDecision:
    """Record the operator's decision to skip the event at (``shard``, ``position``) for
    projection ``name``, naming the event found there now (its id guards the decision)."""
    if not reason.strip():
        raise SkipRefused("say why (--reason): the decision is recorded with who and when")
    found = await log.entry_at(shard, position)
    if found is None:
        raise SkipRefused(f"shard {shard} has no event at position {position}")
    fields = found[1]
    decision = SkipDecision(
        name, shard, position, fields.get("id", ""), fields.get("type", "?"), reason.strip(),
        by, datetime.now().astimezone(),
    )
    return await record_skip(conn, decision)
