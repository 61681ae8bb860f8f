"""Reads that merge the archive (Postgres) and the hot log (Redis) transparently.

The trimmer moves ``{tag}:floor`` to P and removes shard-log entries at positions <= P, and
aggregate-stream entries whose ``pos`` is <= P, only after they are archived. So:

- a shard-log read after position ``a`` comes from the archive while ``a < floor`` and from
  Redis otherwise; the floor and the XRANGE are read in one MULTI, so a trim cannot slip in
  between;
- an aggregate read takes what Redis holds and asks the archive only for the versions below the
  first hot one (or for all, when the stream is gone) — and never while the floor is 0 (nothing
  was ever trimmed), so an untrimmed deployment does not touch Postgres. A read after version
  ``v`` also reads ``v`` itself from Redis: a trim removes a stream's oldest entries, so ``v``
  still hot proves every later version is hot too, and the archive is not asked even when
  nothing came after ``v`` (a poll for an aggregate's next event, a load from a snapshot).
  Without an archive such a read never steps over versions silently: a first hot version past
  the one asked for raises ``HistoryGap`` (versions are contiguous; only a trim removes them).
  ``aggregate_entries`` reads no ``{tag}:cold``, so there an aggregate trimmed away whole reads
  as empty, as a new one does; ``with_cold`` given the mark raises then (as an append would).

Both return XRANGE-shaped ``(entry id, fields)`` lists, archive entries included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, cast

from eventstore.archive import Archive, ArchiveError, Entry
from eventstore.errors import HistoryGap
from eventstore.keys import ShardKeys
from eventstore.redis_client import AsyncRedis

_NO_ARCHIVE = "version {} is the first in Redis, and no archive is wired to read those below"


def number_of(entry_id: str) -> int:
    """The integer part of an entry id (position or version)."""
    return int(entry_id.split("-", 1)[0])


async def _around_floor(
    redis: AsyncRedis, floor_key: str, queue: Callable[[Any], object]
) -> tuple[int, list[Any]]:
    """The shard's floor and the replies of the reads ``queue`` adds to a pipeline, with the
    floor read before and after them in the same round trip; read again when a trim moved it
    in between (a trim only raises the floor). A plain pipeline, not MULTI: on a Redis Cluster
    a transaction's replies come back unparsed."""
    while True:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.get(floor_key)
            queue(pipe)
            pipe.get(floor_key)
            replies = list(await pipe.execute())
        if replies[0] == replies[-1]:
            return int(replies[0] or 0), replies[1:-1]


async def log_entries(
    redis: AsyncRedis,
    archive: Archive | None,
    keys: ShardKeys,
    *,
    after: int,
    limit: int,
    upto: int | None = None,
) -> list[Entry]:
    """Up to ``limit`` shard-log entries with ``after < position <= upto``, in order.

    Entries at or below the floor come only from the archive (one batch never mixes tiers);
    without an archive they raise ``ArchiveError`` rather than being stepped over.
    """
    high = "+" if upto is None else f"{upto}-0"
    floor, (hot,) = await _around_floor(
        redis, keys.floor,
        lambda pipe: pipe.xrange(keys.events, min=f"{after + 1}-0", max=high, count=limit),
    )
    if after >= floor:
        return cast(list[Entry], hot)
    if archive is None:  # trimmed below the reader, and no archive tier to read it from
        raise ArchiveError(
            f"shard {keys.shard}: position {after + 1} is trimmed (floor {floor}) and no archive"
            " is wired to read it from"
        )
    stop = floor if upto is None else min(floor, upto)
    cold = await archive.log_entries(keys.shard, after=after, upto=stop, limit=limit)
    if not cold or number_of(cold[0][0]) != after + 1:
        raise ArchiveError(
            f"shard {keys.shard}: position {after + 1} is trimmed (floor {floor}) but not archived"
        )
    return cold


async def aggregate_entries(
    redis: AsyncRedis,
    archive: Archive | None,
    keys: ShardKeys,
    aggregate_id: str,
    *,
    after: int = 0,
    limit: int | None = None,
) -> list[Entry]:
    """The aggregate's entries with version > ``after`` (``<version>-1``), in version order;
    ``HistoryGap`` when some of them were trimmed and no archive is wired."""
    if archive is None:  # no floor to read: a gap shows in the first version
        hot = cast(
            list[Entry],
            await redis.xrange(keys.aggregate(aggregate_id), min=f"{after + 1}-0", count=limit),
        )
        if hot and number_of(hot[0][0]) > max(after, 0) + 1:
            raise HistoryGap(aggregate_id, after, _NO_ARCHIVE.format(number_of(hot[0][0])))
        return hot
    # From ``after`` itself (one entry more), to learn whether ``after`` is still hot.
    start = max(after, 1)
    count = None if limit is None else limit + (start == after)
    floor, (hot,) = await _around_floor(
        redis, keys.floor,
        lambda pipe: pipe.xrange(keys.aggregate(aggregate_id), min=f"{start}-0", count=count),
    )
    entries, _ = await with_cold(archive, keys, aggregate_id, floor, hot, after=after, limit=limit)
    return entries


async def aggregate_and_documents(
    redis: AsyncRedis,
    archive: Archive | None,
    keys: ShardKeys,
    aggregate_id: str,
    document_keys: Sequence[str],
) -> tuple[list[Entry], list[Any]]:
    """All the aggregate's entries and the values of ``document_keys`` (keys beside its stream),
    in one round trip while every entry is in Redis."""
    floor, (hot, *documents) = await _around_floor(
        redis, keys.floor,
        lambda pipe: (pipe.xrange(keys.aggregate(aggregate_id)),
                      *(pipe.get(key) for key in document_keys)),
    )
    entries, _ = await with_cold(archive, keys, aggregate_id, floor, hot, after=0, limit=None)
    return entries, documents


async def with_cold(
    archive: Archive | None, keys: ShardKeys, aggregate_id: str, floor: int, hot_raw: Any,
    *, after: int, limit: int | None, cold: int | None = None,
) -> tuple[list[Entry], bool]:
    """``hot_raw`` (the aggregate's entries in Redis from ``after`` or after it) without the
    entry at ``after``, preceded by the versions the archive holds below them when a trim
    (``floor`` > 0) may have moved some there; and whether the archive was asked.

    Without an archive, versions the trim moved there raise ``HistoryGap``: always when the
    first hot version is past ``after`` + 1, and when none is hot if ``cold`` (the shard's
    ``{tag}:cold``, when the caller read it) tells that a stream was trimmed away whole.
    """
    hot = cast(list[Entry], hot_raw)
    first = number_of(hot[0][0]) if hot else None
    complete = first is not None and first <= after + 1
    if first is not None and first <= after:
        hot = hot[1:]
    if complete or not floor:
        return (hot if limit is None else hot[:limit]), False
    if archive is None:
        if first is not None:
            raise HistoryGap(aggregate_id, after, _NO_ARCHIVE.format(first))
        if cold:  # as an append there, which needs the archive's version (``ColdAggregate``)
            raise HistoryGap(aggregate_id, after, f"none is in Redis, the shard's streams were"
                             f" trimmed away whole up to position {cold}, and no archive is wired")
        return hot, False
    cold_entries = await archive.aggregate_entries(
        keys.shard, aggregate_id, after=after, below=first, limit=limit
    )
    merged = cold_entries + hot
    return (merged if limit is None else merged[:limit]), True


async def aggregate_last(
    redis: AsyncRedis, archive: Archive | None, keys: ShardKeys, aggregate_id: str
) -> Entry | None:
    """The aggregate's last entry from either tier (None: it has no events)."""
    floor, (last,) = await _around_floor(
        redis, keys.floor, lambda pipe: pipe.xrevrange(keys.aggregate(aggregate_id), count=1)
    )
    if last:
        return cast(Entry, last[0])
    if archive is None or not floor:
        return None
    return await archive.last_aggregate_entry(keys.shard, aggregate_id)


async def aggregate_version(
    redis: AsyncRedis, archive: Archive | None, keys: ShardKeys, aggregate_id: str
) -> int:
    """The aggregate's current version (0 when it has no events in either tier)."""
    floor, (last,) = await _around_floor(
        redis, keys.floor, lambda pipe: pipe.xrevrange(keys.aggregate(aggregate_id), count=1)
    )
    if last:
        return number_of(last[0][0])
    if archive is None or not floor:
        return 0
    head = await archive.aggregate_head(keys.shard, aggregate_id)
    return head.version or 0


async def entry_at(
    redis: AsyncRedis, archive: Archive | None, keys: ShardKeys, position: int
) -> Entry | None:
    """The shard-log entry at ``position`` from either tier (None: it does not exist)."""
    if position < 1:
        return None
    try:
        found = await log_entries(redis, archive, keys, after=position - 1, limit=1, upto=position)
    except ArchiveError:
        return None
    return found[0] if found else None
