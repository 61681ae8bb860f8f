"""Snapshots of states folded from an aggregate, kept beside the log (never in it).

The shard log is what projections read, so a snapshot is no event: like the eventsourcing
recorder's (``eventstore.es.snapshots``) it lives in the aggregate's own snapshot stream
``{tag}:snapshots:<aggregate id>``, entry id ``<version>-1`` (``-2`` and on for a replacement
at the same version, see below), with envelope-like fields (``agg``, ``ver``, ``type`` = the
state's kind, ``sv`` = its format, ``data`` = the state as JSON text, ``ts``). The stream keeps
only its newest entry and expires ``SNAPSHOT_TTL_S`` after it was last written or read (the
read renews it: only a user away that long is read whole once, then snapshotted again).

A snapshot at version ``v`` is the fold of versions 1..v, the same for every writer, so writes
need no coordination: one script call adds it unless the stream already holds ``v`` or newer
(refused, not an error). The one exception is a writer that found the kept snapshot at ``v``
unusable (of another kind or format, or unreadable): it replaces it, so a user with no new
events does not keep an unusable snapshot forever; a newer one is never replaced. What a
snapshot means is the folding code's business (``eventstore.snapshotting``); this module stores
and reads it, the events after it included: ``read_from_snapshot`` returns the newest snapshot
and the aggregate's events after its version in ONE round trip, and asks the archive only when
some of those events are no longer in Redis (``HistoryGap`` when no archive is wired).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

from eventstore import merged
from eventstore.archive import Archive
from eventstore.keys import ShardKeys
from eventstore.redis_client import AsyncRedis
from schemas.envelope import Envelope

SNAPSHOT_TTL_S = 30 * 24 * 3600

# KEYS[1] {tag}:snapshots:<id>  KEYS[2] {tag}:agg:<id>  KEYS[3] {tag}:floor  KEYS[4] {tag}:cold
# ARGV[1] ttl s. The newest snapshot entry (false: none), whose TTL it renews (a snapshot in use
# is kept), the floor, the cold mark, and the aggregate's entries from the snapshot's version
# itself on (all of them without a snapshot): its own entry still hot proves that every later
# one is hot (``merged.with_cold``). Atomic, so no trim slips between.
READ_SCRIPT = """
local snap = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local from = '-'
if snap then
  from = string.match(snap[1], '^(%d+)-') .. '-0'
  if redis.call('TTL', KEYS[1]) < tonumber(ARGV[1]) - 86400 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
  end
end
return {snap or false, redis.call('GET', KEYS[3]) or false, redis.call('GET', KEYS[4]) or false,
        redis.call('XRANGE', KEYS[2], from, '+')}
"""

# KEYS[1] {tag}:snapshots:<id>  ARGV[1] version  ARGV[2] ttl s  ARGV[3] "1": the kept snapshot
# at this version is unusable, replace it  ARGV[4..] field, value, ...
# Adds the snapshot unless one newer, or one at this version not to be replaced, is there;
# 1 written, 0 refused. A replacement takes the next sequence number after the kept entry's (an
# entry id must exceed the last one), and MAXLEN drops the kept one in the same XADD: one write,
# so the stream is never left without a snapshot, even when Redis refuses that write.
WRITE_SCRIPT = """
local version = tonumber(ARGV[1])
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
local id = version .. '-1'
if last then
  local kept, seq = string.match(last[1], '^(%d+)-(%d+)$')
  kept = tonumber(kept)
  if kept > version or (kept == version and ARGV[3] ~= '1') then return 0 end
  if kept == version then id = version .. '-' .. (tonumber(seq) + 1) end
end
redis.call('XADD', KEYS[1], 'MAXLEN', '1', id, unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class Snapshot:
    """The state ``data`` (of ``kind``, written in ``format``) folded from versions 1..``version``
    of ``aggregate_id``."""

    aggregate_id: str
    version: int
    kind: str
    format: int
    data: str

    def fields(self) -> dict[str, str]:
        """The snapshot stream entry's fields."""
        return {"agg": self.aggregate_id, "ver": str(self.version), "type": self.kind,
                "sv": str(self.format), "data": self.data, "ts": repr(time.time())}

    @classmethod
    def of_entry(cls, aggregate_id: str, fields: dict[str, str]) -> Snapshot | None:
        """The snapshot an entry holds, None when it is not one (a foreign or damaged entry)."""
        try:
            snapshot = cls(fields["agg"], int(fields["ver"]), fields["type"], int(fields["sv"]),
                           fields["data"])
        except (KeyError, ValueError):
            return None
        return snapshot if snapshot.aggregate_id == aggregate_id else None


@dataclass(frozen=True)
class FromSnapshot:
    """An aggregate read from its newest snapshot: the snapshot (None: none, or unreadable),
    the version the events follow (the stored snapshot's, readable or not; 0 without one),
    the events after it, and whether the archive had to be read for them."""

    snapshot: Snapshot | None
    after: int
    events: list[Envelope]
    archived: bool


class SnapshotStreams:
    """Reads and writes of the snapshot streams; ``redis`` must decode responses. With an
    ``archive``, events trimmed from Redis are read from it."""

    def __init__(self, redis: AsyncRedis, archive: Archive | None = None) -> None:
        self.archive = archive
        self._read = redis.register_script(READ_SCRIPT)
        self._write = redis.register_script(WRITE_SCRIPT)

    async def read_from_snapshot(self, keys: ShardKeys, aggregate_id: str) -> FromSnapshot:
        """The aggregate's newest snapshot (its TTL renewed) and its entries after the
        snapshot's version; ``HistoryGap`` when some are trimmed and no archive is wired."""
        raw, floor, cold, hot = cast(list[Any], await self._read(
            keys=[keys.snapshots(aggregate_id), keys.aggregate(aggregate_id), keys.floor,
                  keys.cold],
            args=[SNAPSHOT_TTL_S],
        ))
        after, snapshot = 0, None
        if raw:
            after = merged.number_of(raw[0])
            snapshot = Snapshot.of_entry(aggregate_id, _fields(raw[1]))
            if snapshot is not None and snapshot.version != after:
                snapshot = None
        entries, archived = await merged.with_cold(
            self.archive, keys, aggregate_id, int(floor or 0),
            [(entry_id, _fields(flat)) for entry_id, flat in hot], after=after, limit=None,
            cold=int(cold or 0),
        )
        events = [Envelope.from_fields(fields, shard=keys.shard) for _, fields in entries]
        return FromSnapshot(snapshot, after, events, archived)

    async def save(self, keys: ShardKeys, snapshot: Snapshot, *, replacing: bool = False) -> bool:
        """Keep ``snapshot`` unless one newer is kept, or one at its version and not
        ``replacing`` (the caller found that one unusable); False then."""
        if snapshot.version < 1:
            raise ValueError(f"a snapshot follows version 1 or later, not {snapshot.version}")
        args: list[str | int] = [snapshot.version, SNAPSHOT_TTL_S, "1" if replacing else "0"]
        for name, value in snapshot.fields().items():
            args += [name, value]
        return bool(await self._write(keys=[keys.snapshots(snapshot.aggregate_id)], args=args))


def _fields(flat: list[str]) -> dict[str, str]:
    """A script reply's flat ``[name, value, ...]`` as the field map XRANGE gives."""
    return dict(zip(flat[::2], flat[1::2], strict=True))
