"""Trimming one shard's hot tier (ARCHITECTURE §7), after its entries are archived.

The trim point P of the shard log is the least of:

- the archive checkpoint (nothing un-archived ever leaves Redis);
- every consumer group of the log (delivered and acknowledged; the snapshot projector is one);
- every dead letter that points into the log;
- every extra floor the caller passes (the projectors' checkpoints);
- the retention policy: entries younger than ``hot_retention_s`` stay, and with
  ``hot_max_events`` the newest that many stay (older ones may go even if younger).

``trim.lua`` then removes log entries <= P, aggregate-stream entries at positions <= P (a
stream left empty is deleted) and the idempotency records of events older than the
idempotency window. Commands streams lose entries every group has acknowledged once they are
older than the retention; retry streams lose acknowledged entries at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from eventstore.cancellation import raise_if_cancelled
from eventstore.floors import (
    dead_letter_floors,
    group_floors,
    id_text,
    last_position_before,
)
from eventstore.keys import ShardKeys
from eventstore.scripts import script_source

if TYPE_CHECKING:
    from eventstore.archive import Conn, Pool

log = logging.getLogger(__name__)

FloorSource = Callable[[int], Awaitable[int | None]]  # shard -> position it still needs after
AGGREGATES_PER_CALL = 200
EIDS_PER_CALL = 5000


@dataclass(frozen=True)
class RetentionPolicy:
    hot_retention_s: float = 7 * 86400
    hot_max_events: int = 0  # per shard; 0 = no count bound
    idempotency_window_s: float = 86400


@dataclass(frozen=True)
class TrimReport:
    shard: int
    floor: int  # trim point after this cycle
    limit: str  # what bounded it: archive | group:<name> | dlq | <floor source> | retention
    log_trimmed: int
    streams_deleted: int
    ids_forgotten: int
    commands_trimmed: int
    retry_trimmed: int


class Trimmer:
    """One shard's trim step; ``pool`` holds the archive (same schema as the read side)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: Pool,
        keys: ShardKeys,
        policy: RetentionPolicy,
        floors: Sequence[tuple[str, FloorSource]] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.keys = keys
        self.policy = policy
        self.floors = floors
        self.clock = clock
        self._script = redis.register_script(script_source("trim"))

    async def trim_point(self, archived: int) -> tuple[int, str]:
        """The highest position that may leave Redis now, and what bounds it."""
        keys = self.keys
        point, why = archived, "archive"
        for floor in await group_floors(self.redis, keys.events) or []:
            if last_position_before(floor.keep_from) < point:
                point, why = last_position_before(floor.keep_from), f"group:{floor.group}"
        dead = (await dead_letter_floors(self.redis, keys.dlq)).get(keys.events)
        if dead is not None and last_position_before(dead) < point:
            point, why = last_position_before(dead), "dlq"
        for name, source in self.floors:
            needed = await source(keys.shard)
            if needed is not None and needed < point:
                point, why = needed, name
        policy = self.policy
        old_floor = int(await self.redis.get(keys.floor) or 0)
        if point > old_floor:
            cut = await self._first_young(old_floor, point, self.clock() - policy.hot_retention_s)
            if policy.hot_max_events:
                head = int(await self.redis.get(keys.head) or 0)
                cut = max(cut, head - policy.hot_max_events)
            if cut < point:
                point, why = cut, "retention"
        return max(point, old_floor), why

    async def _first_young(self, after: int, upto: int, cutoff: float) -> int:
        """The last position before the first archived event in ``(after, upto]`` younger
        than ``cutoff`` (``upto`` when all are older)."""
        async with self.pool.acquire() as conn:
            young = await conn.fetchval(
                "SELECT position FROM event_log WHERE shard = $1 AND position > $2"
                " AND position <= $3 AND ts >= $4 ORDER BY position LIMIT 1",
                self.keys.shard, after, upto, cutoff,
            )
        return upto if young is None else int(young) - 1

    async def trim(self, archived: int) -> TrimReport:
        """One trim step of the shard, given its archive checkpoint."""
        keys = self.keys
        point, why = await self.trim_point(archived)
        deleted = 0
        async with self.pool.acquire() as conn:
            trimmed, _ = await self._call(point, [], [])  # the log first: readers follow the floor
            done = int(
                await conn.fetchval(
                    "SELECT streams_trimmed FROM event_log_archived WHERE shard = $1", keys.shard
                )
                or 0
            )
            if point > done:
                rows = await conn.fetch(
                    "SELECT DISTINCT aggregate_id FROM event_log WHERE shard = $1"
                    " AND position > $2 AND position <= $3",
                    keys.shard, done, point,
                )
                streams = [keys.aggregate(r["aggregate_id"]) for r in rows]
                for start in range(0, len(streams), AGGREGATES_PER_CALL):
                    raise_if_cancelled()
                    _, d = await self._call(point, streams[start : start + AGGREGATES_PER_CALL], [])
                    deleted += d
                await conn.execute(
                    "UPDATE event_log_archived SET streams_trimmed = $2 WHERE shard = $1",
                    keys.shard, point,
                )
            forgotten = await self._forget_ids(conn, point)
        commands = await self._trim_commands()
        retries = await self._trim_retries()
        return TrimReport(keys.shard, point, why, trimmed, deleted, forgotten, commands, retries)

    async def _call(self, point: int, streams: list[str], ids: list[str]) -> tuple[int, int]:
        keys = self.keys
        reply = await self._script(
            keys=[keys.events, keys.floor, keys.cold, keys.event_ids, *streams],
            args=[point, *ids],
        )
        return int(reply[0]), int(reply[1])

    async def _forget_ids(self, conn: Conn, point: int) -> int:
        """Drop the idempotency records of trimmed events older than the window; progress is
        kept in ``event_log_archived.ids_forgotten`` (repeating a step is harmless)."""
        done = int(
            await conn.fetchval(
                "SELECT ids_forgotten FROM event_log_archived WHERE shard = $1", self.keys.shard
            )
            or 0
        )
        upto = min(point, await self._first_young(done, point, self.clock() - self.policy.idempotency_window_s))
        total = 0
        while done < upto:
            raise_if_cancelled()
            stop = min(upto, done + EIDS_PER_CALL)
            rows = await conn.fetch(
                "SELECT event_id::text AS id FROM event_log WHERE shard = $1"
                " AND position > $2 AND position <= $3",
                self.keys.shard, done, stop,
            )
            if rows:
                await self._call(point, [], [r["id"] for r in rows])
            await conn.execute(
                "UPDATE event_log_archived SET ids_forgotten = $2 WHERE shard = $1",
                self.keys.shard, stop,
            )
            total, done = total + len(rows), stop
        return total

    async def _trim_commands(self) -> int:
        keys = self.keys
        floors = await group_floors(self.redis, keys.commands)
        if not floors:
            return 0  # nobody consumes it yet: keep everything
        keep = min(f.keep_from for f in floors)
        dead = (await dead_letter_floors(self.redis, keys.dlq)).get(keys.commands)
        if dead is not None:
            keep = min(keep, dead)
        keep = min(keep, (int((self.clock() - self.policy.hot_retention_s) * 1000), 0))
        return int(await self.redis.xtrim(keys.commands, minid=id_text(keep), approximate=False))

    async def _trim_retries(self) -> int:
        keys = self.keys
        total = 0
        names: set[str] = set()
        for source in (keys.commands, keys.events):
            names |= {f.group for f in await group_floors(self.redis, source) or []}
        for name in sorted(names):
            stream = keys.retry(name)
            mine = [f for f in await group_floors(self.redis, stream) or [] if f.group == name]
            if mine:
                total += int(
                    await self.redis.xtrim(stream, minid=id_text(mine[0].keep_from), approximate=False)
                )
        return total
