"""Reading the log: the one API every reader of it uses (ARCHITECTURE §1, §7).

The gateway (a job's events and snapshot, the log's figures), the projectors, the snapshot
projector and the operations pages read the log's keys only through ``LogReader``:

- ``aggregate``: one aggregate's entries after a version, archive and hot tier merged;
- ``shard_range`` / ``entry_at``: a shard log's entries after a position, merged the same way;
- ``follow``: the one tail loop, batches of one or several shard logs from given positions on,
  waiting for new entries; followers differ only in what they do with a batch;
- ``hot_versions``: many aggregates' versions at once, from Redis only (a keepalive's check);
- ``document`` / ``glance`` / ``aggregate_with``: values other packages keep beside an
  aggregate's stream under a role they own (a job's snapshot, the gateway's pending owner),
  alone, with the aggregate's first hot entry, or with all its entries;
- ``head``, ``latest``, ``figures``: where a shard log ends, its newest entries, the sizes and
  consumer-group figures the metrics and the operations page show.

No read steps over an event silently: positions are contiguous, so a blocking read's reply is
taken only when it starts right after the position asked for; otherwise the range read takes
over, which serves positions below the trim floor from the archive and raises ``ArchiveError``
when they are in neither tier (``merged.log_entries``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, cast

from eventstore import merged
from eventstore.archive import Archive, Entry
from eventstore.cancellation import raise_if_cancelled
from eventstore.keys import Layout
from eventstore.log_stats import LogFigures, log_figures
from eventstore.redis_client import AsyncRedis, read_streams


def position_of(entry_id: str) -> int:
    """The position of a shard-log entry (the integer part of its id)."""
    return int(entry_id.split("-", 1)[0])


@dataclass(frozen=True)
class ShardBatch:
    """Entries of one shard log, contiguous and in position order."""

    shard: int
    entries: list[Entry]

    @property
    def last_position(self) -> int:
        return position_of(self.entries[-1][0])


@dataclass(frozen=True)
class Glance:
    """An aggregate's first entry still in Redis and its documents, read together."""

    first: Entry | None
    documents: dict[str, str | None]


# The last entry id of each key (false: no such stream). The keys share the shard's hash tag,
# so it runs on a cluster too.
_LAST_IDS = """
local out = {}
for i, key in ipairs(KEYS) do
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  out[i] = last[1] and last[1][1] or false
end
return out
"""


class LogReader:
    """Reads of one deployment's log; ``redis`` must decode responses. With an ``archive``,
    positions and versions trimmed from Redis are read from it."""

    def __init__(self, redis: AsyncRedis, layout: Layout, archive: Archive | None = None) -> None:
        self.redis = redis
        self.layout = layout
        self.archive = archive

    # -- aggregates ---------------------------------------------------------------------

    async def aggregate(
        self, aggregate_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[Entry]:
        """The aggregate's entries with version > ``after`` (ids ``<version>-1``), in order."""
        keys = self.layout.keys_for(aggregate_id)
        return await merged.aggregate_entries(
            self.redis, self.archive, keys, aggregate_id, after=after, limit=limit
        )

    async def aggregate_version(self, aggregate_id: str) -> int:
        """The aggregate's current version (0 when it has no events in either tier)."""
        keys = self.layout.keys_for(aggregate_id)
        return await merged.aggregate_version(self.redis, self.archive, keys, aggregate_id)

    async def aggregate_last(self, aggregate_id: str) -> Entry | None:
        """The aggregate's last entry from either tier (None: it has no events)."""
        keys = self.layout.keys_for(aggregate_id)
        return await merged.aggregate_last(self.redis, self.archive, keys, aggregate_id)

    async def hot_versions(self, shard: int, aggregate_ids: Sequence[str]) -> list[int | None]:
        """The versions of aggregates of ``shard`` whose streams are in Redis (None: not
        there, e.g. trimmed away), in one script call that returns only entry ids."""
        keys = self.layout.keys(shard)
        last_ids = self.redis.register_script(_LAST_IDS)  # EVALSHA, loaded on first use
        ids = await last_ids(keys=[keys.aggregate(a) for a in aggregate_ids])
        return [position_of(str(last)) if last else None for last in ids]

    async def document(self, aggregate_id: str, role: str) -> str | None:
        """The value kept beside ``aggregate_id``'s stream under ``role`` (None: there is none)."""
        keys = self.layout.keys_for(aggregate_id)
        return cast(str | None, await self.redis.get(keys.document(role, aggregate_id)))

    async def glance(self, aggregate_id: str, roles: Sequence[str]) -> Glance:
        """The aggregate's first hot entry and its ``roles`` documents, in one round trip.

        Only Redis is asked: an aggregate trimmed away shows no first entry here (``aggregate``
        reads the archive too)."""
        keys = self.layout.keys_for(aggregate_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xrange(keys.aggregate(aggregate_id), count=1)
            for role in roles:
                pipe.get(keys.document(role, aggregate_id))
            first, *documents = await pipe.execute()
        entries = cast(list[Entry], first)
        return Glance(
            entries[0] if entries else None,
            {role: cast(str | None, value) for role, value in zip(roles, documents, strict=True)},
        )

    async def aggregate_with(
        self, aggregate_id: str, roles: Sequence[str]
    ) -> tuple[list[Entry], dict[str, str | None]]:
        """All the aggregate's entries (from either tier) and its ``roles`` documents, in one
        round trip while its entries are all in Redis."""
        keys = self.layout.keys_for(aggregate_id)
        entries, documents = await merged.aggregate_and_documents(
            self.redis, self.archive, keys, aggregate_id,
            [keys.document(role, aggregate_id) for role in roles],
        )
        return entries, dict(zip(roles, documents, strict=True))

    # -- shard logs ---------------------------------------------------------------------

    async def shard_range(
        self, shard: int, *, after: int, limit: int, upto: int | None = None
    ) -> list[Entry]:
        """Up to ``limit`` entries of the shard log with ``after < position <= upto`` (no
        bound when None), from the archive below the trim floor and from Redis above it."""
        if upto is not None and upto <= after:
            return []
        return await merged.log_entries(
            self.redis, self.archive, self.layout.keys(shard), after=after, limit=limit, upto=upto
        )

    async def entry_at(self, shard: int, position: int) -> Entry | None:
        """The shard-log entry at ``position`` from either tier (None: there is none)."""
        return await merged.entry_at(self.redis, self.archive, self.layout.keys(shard), position)

    async def head(self, shard: int) -> int:
        """The last position written to the shard log (0 when empty)."""
        return int(cast(Any, await self.redis.get(self.layout.keys(shard).head)) or 0)

    async def latest(self, shard: int, count: int) -> list[Entry]:
        """The newest ``count`` entries still in Redis, oldest first (a look, not a read on)."""
        if count <= 0:
            return []
        newest = cast(list[Entry], await self.redis.xrevrange(self.layout.keys(shard).events,
                                                              count=count))
        return newest[::-1]

    async def figures(self) -> LogFigures:
        """Every shard's head, stream lengths and dead letters, and every consumer group's
        pending entries, lag and retry backlog (a few pipelined round trips)."""
        return await log_figures(self.redis, self.layout)

    # -- following ----------------------------------------------------------------------

    async def follow(
        self, after: Mapping[int, int], *, batch: int = 1000, block_ms: int = 1000
    ) -> AsyncGenerator[list[ShardBatch], None]:
        """The shard logs of ``after`` (shard -> position already read), batch by batch, forever.

        Each item holds, per shard with something new, its next entries in position order; an
        empty item means nothing arrived within ``block_ms`` (the follower's idle tick). A shard
        that is behind is read by range (archive below the floor) until a read comes back
        short, and behind shards are caught up before the others are waited on. A caught-up
        shard waits in a blocking XREAD whose reply is taken only when it starts right after
        the position; otherwise (a trim overtook the follower) the shard reads by range again.
        """
        positions = dict(after)
        behind = set(positions)
        while True:
            raise_if_cancelled()  # a read that swallowed the follower's cancellation
            found: list[ShardBatch] = []
            for shard in sorted(behind):
                entries = await self.shard_range(shard, after=positions[shard], limit=batch)
                if len(entries) < batch:
                    behind.discard(shard)
                if entries:
                    found.append(ShardBatch(shard, entries))
            if not found:
                found, gapped = await self._wait(positions, batch, block_ms)
                behind |= gapped
                if gapped and not found:
                    continue
            for got in found:
                positions[got.shard] = got.last_position
            yield found

    async def follow_shard(
        self, shard: int, *, after: int = 0, batch: int = 1000, block_ms: int = 1000
    ) -> AsyncGenerator[list[Entry], None]:
        """``follow`` of one shard: its entries after ``after``, batch by batch ([] = idle)."""
        async with aclosing(self.follow({shard: after}, batch=batch, block_ms=block_ms)) as tail:
            async for found in tail:
                yield found[0].entries if found else []

    async def _wait(
        self, positions: Mapping[int, int], batch: int, block_ms: int
    ) -> tuple[list[ShardBatch], set[int]]:
        """New entries of caught-up shards (waiting up to ``block_ms``), and the shards whose
        reply did not start right after their position."""
        shard_of = {self.layout.keys(s).events: s for s in positions}
        streams = {key: f"{positions[s]}-0" for key, s in shard_of.items()}
        reply = await read_streams(self.redis, streams, count=batch, block_ms=block_ms)
        found, gapped = [], set()
        for stream, entries in reply:
            shard = shard_of[stream]
            if not entries:
                continue
            if position_of(entries[0][0]) == positions[shard] + 1:
                found.append(ShardBatch(shard, cast(list[Entry], entries)))
            else:
                gapped.add(shard)
        found.sort(key=lambda b: b.shard)
        return found, gapped
