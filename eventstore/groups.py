"""Consumer groups on a shard's streams: read, ack, claim, retry and dead-letter.

Each group reads two streams per shard: the source (``{tag}:commands`` or ``{tag}:events``) and
its own retry stream ``{tag}:retry:<group>`` (failed attempts and DLQ replays land there, so a
replay reaches that group only). Prior attempts travel with an entry in ``_attempts``; a crashed
consumer's entries are found by XAUTOCLAIM and their delivery counts read from XPENDING.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

from redis.exceptions import ResponseError

from eventstore.keys import Layout, ShardKeys
from eventstore.metrics import consumer_metrics
from eventstore.redis_client import AsyncRedis

Source = Literal["commands", "events"]
ATTEMPTS = "_attempts"  # prior failed attempts, carried by retry entries
ORIGIN = "_origin"  # "<stream>/<id>" of the entry a retry came from


@dataclass(frozen=True)
class Delivery:
    """One entry handed to a consumer."""

    shard: int
    stream: str
    entry_id: str
    fields: dict[str, str]
    attempts: int  # failed or crashed deliveries before this one

    @property
    def origin(self) -> str:
        return self.fields.get(ORIGIN) or f"{self.stream}/{self.entry_id}"


def _source_key(keys: ShardKeys, source: Source) -> str:
    return keys.commands if source == "commands" else keys.events


# Move an entry: ack it and append its successor (a retry, a requeued entry, a dead letter) in
# one step, only if the XACK still finds it pending. A claim racing a slow attempt can leave two
# consumers settling one entry; the first moves it, the second finds nothing to move, so a
# failing entry never forks into two retry chains or two letters.
# KEYS: the entry's stream, the destination; ARGV: group, entry id, then field/value pairs.
_MOVE = """
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 3))
"""


# Hand an entry back: like ``_MOVE``, but only while it is still pending on this consumer (a
# claim may have given it to another consumer since it was listed, and that one handles it).
# KEYS: the entry's stream, the retry stream; ARGV: group, entry id, consumer, field/value pairs.
_HAND_BACK = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return false end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
"""
LISTED_AT_ONCE = 1000  # entries per XPENDING when listing a consumer's own


class ConsumerGroup:
    """One consumer of one group over chosen shards."""

    def __init__(
        self,
        redis: AsyncRedis,
        layout: Layout,
        *,
        group: str,
        source: Source,
        consumer: str,
    ) -> None:
        self.redis = redis
        self.layout = layout
        self.group = group
        self.source = source
        self.consumer = consumer

    def streams(self, shard: int) -> tuple[str, str]:
        """(source stream, retry stream) of ``shard``."""
        keys = self.layout.keys(shard)
        return _source_key(keys, self.source), keys.retry(self.group)

    async def ensure(self, shards: range | list[int], *, start: str = "0") -> None:
        """Create the group on every stream of ``shards`` (idempotent).

        ``start="0"`` consumes the existing backlog; ``"$"`` only what arrives from now on.
        """
        for shard in shards:
            for stream in self.streams(shard):
                try:
                    await self.redis.xgroup_create(stream, self.group, id=start, mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise

    async def read(self, shard: int, *, count: int, block_ms: int) -> list[Delivery]:
        """New entries of the shard's source and retry streams for this consumer."""
        source, retry = self.streams(shard)
        reply = await self.redis.xreadgroup(
            self.group, self.consumer, {retry: ">", source: ">"}, count=count, block=block_ms
        )
        deliveries = []
        for stream, entries in reply or []:
            for entry_id, fields in entries:
                if fields is None:  # deleted while pending
                    continue
                attempts = int(fields.get(ATTEMPTS, 0))
                deliveries.append(Delivery(shard, stream, entry_id, fields, attempts))
        return deliveries

    async def ack(self, stream: str, *entry_ids: str) -> None:
        if entry_ids:
            await self.redis.xack(stream, self.group, *entry_ids)

    async def touch(self, stream: str, entry_ids: list[str]) -> None:
        """Reset the idle time of entries still being worked on, so no one claims them."""
        if entry_ids:
            await self.redis.xclaim(
                stream, self.group, self.consumer, 0, entry_ids, justid=True
            )

    async def claim(self, shard: int, *, min_idle_ms: int, count: int = 100) -> list[Delivery]:
        """Take over entries idle longer than ``min_idle_ms`` (their consumer likely died)."""
        claimed: list[Delivery] = []
        for stream in self.streams(shard):
            reply = await self.redis.xautoclaim(
                stream, self.group, self.consumer, min_idle_ms, "0-0", count=count
            )
            entries = [(i, f) for i, f in reply[1] if f is not None]
            for entry_id, _ in reply[1]:
                if _ is None:  # trimmed away: nothing left to process
                    await self.ack(stream, entry_id)
            if not entries:
                continue
            pending = await self.redis.xpending_range(
                stream, self.group, min=entries[0][0], max=entries[-1][0], count=len(entries) * 2
            )
            delivered = {p["message_id"]: int(p["times_delivered"]) for p in pending}
            for entry_id, fields in entries:
                crashed = max(delivered.get(entry_id, 1) - 1, 0)
                attempts = int(fields.get(ATTEMPTS, 0)) + crashed
                claimed.append(Delivery(shard, stream, entry_id, fields, attempts))
        return claimed

    async def left_with_me(self, shard: int) -> list[Delivery]:
        """Entries of ``shard`` pending on this consumer, oldest first, with their attempts. A
        read whose reply was lost (cut short by a stop) leaves such entries: Redis delivered
        them, nobody here saw them. Entries trimmed away meanwhile are acked."""
        left: list[Delivery] = []
        for stream in self.streams(shard):
            start = "-"
            while True:
                pending = await self.redis.xpending_range(
                    stream, self.group, min=start, max="+", count=LISTED_AT_ONCE,
                    consumername=self.consumer,
                )
                for row in pending:
                    entry_id = row["message_id"]
                    entries = await self.redis.xrange(stream, entry_id, entry_id, count=1)
                    if not entries:
                        await self.ack(stream, entry_id)
                        continue
                    fields = entries[0][1]
                    attempts = int(fields.get(ATTEMPTS, 0)) + max(int(row["times_delivered"]) - 1, 0)
                    left.append(Delivery(shard, stream, entry_id, fields, attempts))
                if len(pending) < LISTED_AT_ONCE:
                    break
                start = "(" + pending[-1]["message_id"]
        return left

    async def hand_back(self, delivery: Delivery) -> bool:
        """Re-queue an entry this consumer holds but will not handle (it is stopping) on the
        retry stream, as it was (due time, attempts), so the next consumer reads it at once
        instead of claiming it after ``claim_idle_ms``. False when it is no longer this
        consumer's: a claim gave it to another one meanwhile."""
        keys = self.layout.keys(delivery.shard)
        flat = [part for pair in _requeued(delivery, {}).items() for part in pair]
        moved = await self.redis.eval(
            _HAND_BACK, 2, delivery.stream, keys.retry(self.group), self.group,
            delivery.entry_id, self.consumer, *flat,
        )
        return moved is not None

    async def retry(self, delivery: Delivery, error: str) -> None:
        """Re-queue a failed entry on this group's retry stream and ack the original."""
        fields = _original_fields(delivery)
        fields[ATTEMPTS] = str(delivery.attempts + 1)
        fields[ORIGIN] = delivery.origin
        fields["_error"] = error[:2000]
        await self._move(delivery, self.layout.keys(delivery.shard).retry(self.group), fields)

    async def dead_letter(self, delivery: Delivery, error: str, *, attempts: int) -> str:
        """Move an entry to ``{tag}:dlq`` with its error and attempts, and ack it; the letter's
        id, or "" when another consumer already settled the entry."""
        keys = self.layout.keys(delivery.shard)
        stream, _, entry_id = delivery.origin.rpartition("/")
        fields = _original_fields(delivery)
        fields.update(
            {
                "dlq_stream": stream,
                "dlq_entry": entry_id,
                "dlq_group": self.group,
                "dlq_attempts": str(attempts),
                "dlq_error": error[:4000],
                "dlq_consumer": self.consumer,
                "dlq_at": repr(time.time()),
            }
        )
        dlq_id = await self._move(delivery, keys.dlq, fields)
        if not dlq_id:
            return ""
        consumer_metrics().dead_letters.labels(self.group, error.split(":", 1)[0][:60]).inc()
        return str(dlq_id)

    async def requeue(self, delivery: Delivery, marks: dict[str, str]) -> None:
        """Re-queue an entry on this group's retry stream with ``marks`` (``_due``, ``_since``,
        …; see ``eventstore.later``) and ack the original, *without* counting an attempt."""
        keys = self.layout.keys(delivery.shard)
        await self._move(delivery, keys.retry(self.group), _requeued(delivery, marks))

    async def _move(self, delivery: Delivery, to: str, fields: dict[str, str]) -> str:
        """Ack ``delivery`` and append ``fields`` to ``to`` if it was still pending (see
        ``_MOVE``): the new entry's id, or "" when another consumer already settled it."""
        flat = [part for pair in fields.items() for part in pair]
        moved = await self.redis.eval(
            _MOVE, 2, delivery.stream, to, self.group, delivery.entry_id, *flat
        )
        return "" if moved is None else str(moved)


def _requeued(delivery: Delivery, marks: dict[str, str]) -> dict[str, str]:
    """The fields of ``delivery`` re-queued as it was (attempts, origin, its marks) plus ``marks``."""
    fields = _original_fields(delivery)
    fields[ATTEMPTS] = str(delivery.attempts)
    fields[ORIGIN] = delivery.origin
    fields.update({k: v for k, v in delivery.fields.items() if k.startswith("_") and k not in fields})
    fields.update(marks)
    return fields


def _original_fields(delivery: Delivery) -> dict[str, str]:
    return {k: v for k, v in delivery.fields.items() if not k.startswith("_")}
