"""The Redis side shared by the eventsourcing recorders: one pool, one shard, ``append.lua``.

Every event insert is one ``EVALSHA`` of the async store's ``append.lua`` in ``"="`` mode (the
library chooses versions), without event-id dedupe (versions already make a retry conflict),
with an optional tracking position for process recorders. Writes the script cannot serve
(tracking alone, snapshots) are ``WATCH``/``MULTI`` transactions on the same keys.

Retries: redis-py retries a command after a timeout. Versions are explicit, so a retried
append that had in fact run is refused (``IntegrityError``), never recorded twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import cast

import redis
from eventsourcing.persistence import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from redis.client import Pipeline

from eventstore.es import codec as es_codec
from eventstore.es.archive import SyncArchive
from eventstore.keys import ShardKeys
from eventstore.redis_client import SyncRedis
from eventstore.scripts import append_args, text_values

# A stream entry as redis-py returns it without decode_responses: (entry id, fields).
Entry = tuple[bytes, dict[bytes, bytes]]

SCRIPT_CONFLICTS = ("CONFLICT", "TRACKING", "DUPLICATE_PARTIAL")


def load_append_script() -> str:
    """The text of ``eventstore/lua/append.lua`` from the installed package."""
    return resources.files("eventstore").joinpath("lua/append.lua").read_text("utf-8")


@contextmanager
def translated_errors() -> Iterator[None]:
    """Re-raise redis-py errors as eventsourcing's persistence errors."""
    try:
        yield
    except redis.ResponseError as exc:
        word = str(exc).partition(" ")[0]
        if word in SCRIPT_CONFLICTS:
            raise IntegrityError(str(exc)) from exc
        if word == "BADARGS":
            raise ProgrammingError(str(exc)) from exc
        raise DatabaseError(str(exc)) from exc
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise OperationalError(str(exc)) from exc
    except redis.RedisError as exc:
        raise PersistenceError(str(exc)) from exc


def group_by_originator(
    stored_events: Sequence[StoredEvent],
) -> list[tuple[str, list[int]]]:
    """Indexes of ``stored_events`` per originator, originators in order of first appearance.

    ``append.lua`` takes each aggregate's events as one run; grouping keeps a batch such as
    ``a1, b1, a2`` valid, and the indexes map the script's positions back to input order.
    """
    groups: dict[str, list[int]] = {}
    for index, stored in enumerate(stored_events):
        groups.setdefault(str(stored.originator_id), []).append(index)
    return list(groups.items())


class RedisDatastore:
    """One connection pool and one shard of the log, shared by a factory's recorders.

    Thread-safe: redis-py takes a pooled connection per command.
    """

    def __init__(
        self,
        client: SyncRedis,
        keys: ShardKeys,
        *,
        uuid_ids: bool = True,
        archive: SyncArchive | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.uuid_ids = uuid_ids
        self.archive = archive  # history trimmed from Redis (ARCHITECTURE §7)
        self._append = client.register_script(load_append_script())

    def append(
        self, stored_events: Sequence[StoredEvent], tracking: Tracking | None = None
    ) -> list[int]:
        """Record events (and a tracking position) atomically; their positions, in input order.

        Raises ``IntegrityError`` when a version is already taken or the tracking position is
        not new; nothing is written then.
        """
        groups = group_by_originator(stored_events)
        keys = self.keys
        script_keys: list[str] = [keys.events, keys.head, keys.event_ids]
        plan: list[str | int] = []
        for agg, indexes in groups:
            script_keys.append(keys.aggregate(agg))
            plan += ["=", len(indexes)]
        script_keys.append(keys.cold)
        if tracking:
            script_keys.append(keys.tracking(tracking.application_name))
        ts = repr(time.time())
        rows = [
            text_values(es_codec.event_values(stored_events[index], ts))
            for _, indexes in groups
            for index in indexes
        ]
        tracked = str(tracking.notification_id) if tracking else ""
        args = append_args("0", tracked, plan, rows)
        with translated_errors():
            try:
                reply = self._append(keys=script_keys, args=args)
            except redis.ResponseError as exc:
                if not str(exc).startswith("COLD") or self.archive is None:
                    raise
                # A stream was trimmed away: give every aggregate the archive's version.
                for slot, (agg, _) in enumerate(groups):
                    hint = self.archive.aggregate_head(keys.shard, agg)
                    plan[2 * slot] = f"=@{hint}"
                reply = self._append(keys=script_keys, args=append_args("0", tracked, plan, rows))
        # reply: [b"ok", pos1, ver1, pos2, ver2, ...] in group order.
        positions = [0] * len(stored_events)
        order = [index for _, indexes in groups for index in indexes]
        for slot, index in enumerate(order):
            positions[index] = int(reply[1 + 2 * slot])
        return positions

    def transaction(self, body: Callable[[Pipeline], None], *watched: str) -> None:
        """Run ``body`` as an optimistic transaction on the ``watched`` keys.

        ``body`` reads (and may raise, e.g. ``IntegrityError``), then calls ``pipe.multi()`` and
        queues its writes; a concurrent change of a watched key re-runs it.
        """
        with translated_errors():
            self.client.transaction(body, *watched)

    def select_stream(
        self,
        key: str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        """Events of a stream whose entry ids are ``<version>-1``, filtered by version."""
        if (limit is not None and limit < 1) or (lte is not None and lte < 0):
            return []
        low = "-" if gt is None or gt < 0 else f"{gt + 1}-0"
        high = "+" if lte is None else f"{lte}-1"
        floor, entries = self._with_floor(key, low, high, limit, desc=desc)
        if self.archive is not None and floor:
            entries = self._merged_stream(key, low, high, gt, lte)
            entries = entries[::-1] if desc else entries
            entries = entries if limit is None else entries[:limit]
        return [es_codec.stored_event_of(fields, uuid_ids=self.uuid_ids) for _, fields in entries]

    def _with_floor(
        self, key: str, low: str, high: str, count: int | None, *, desc: bool = False
    ) -> tuple[int, list[Entry]]:
        """The floor and a range of ``key``, the floor read before and after the range in one
        round trip and the whole read again when a trim moved it in between (a plain pipeline:
        on a Redis Cluster a MULTI's replies come back unparsed)."""
        while True:
            with translated_errors():
                pipe = self.client.pipeline(transaction=False)
                pipe.get(self.keys.floor)
                if desc:
                    pipe.xrevrange(key, max=high, min=low, count=count)
                else:
                    pipe.xrange(key, min=low, max=high, count=count)
                pipe.get(self.keys.floor)
                before, entries, after = pipe.execute()
            if before == after:
                return int(before or 0), cast(list[Entry], entries)

    def floor(self) -> int:
        """The shard's trim point: positions at or below it may be only in the archive."""
        with translated_errors():
            return int(self.client.get(self.keys.floor) or 0)

    def _merged_stream(
        self, key: str, low: str, high: str, gt: int | None, lte: int | None
    ) -> list[Entry]:
        assert self.archive is not None
        hot = self.read_range(key, low, high, None)
        below = es_codec.entry_number(hot[0][0]) if hot else None
        if below is not None and below <= (0 if gt is None or gt < 0 else gt + 1):
            return hot
        aggregate_id = key.removeprefix(self.keys.aggregate(""))
        with translated_errors():
            cold = self.archive.aggregate(self.keys.shard, aggregate_id, gt, below, lte)
        return cold + hot

    def read_log(self, first: int, high: str, count: int) -> list[Entry]:
        """Shard-log entries from position ``first`` up to entry id ``high``, from the archive
        while ``first`` is at or below the floor (one tier per call)."""
        floor, hot = self._with_floor(self.keys.events, f"{first}-0", high, count)
        if self.archive is None or first > floor:
            return hot
        upto = floor if high == "+" else min(floor, es_codec.entry_number(high.encode()))
        with translated_errors():
            return self.archive.log(self.keys.shard, first - 1, upto, count)

    def read_range(
        self, key: str, low: str, high: str, count: int | None, *, desc: bool = False
    ) -> list[Entry]:
        """XRANGE (or XREVRANGE) of ``key`` between entry ids ``low`` and ``high``."""
        with translated_errors():
            if desc:
                entries = self.client.xrevrange(key, max=high, min=low, count=count)
            else:
                entries = self.client.xrange(key, min=low, max=high, count=count)
        return cast(list[Entry], entries)

    def close(self) -> None:
        """Close the pool's connections."""
        self.client.close()
        if self.archive is not None:
            self.archive.close()
