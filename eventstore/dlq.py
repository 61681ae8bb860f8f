"""Dead-letter operations: list, inspect, replay to the failed group only, purge.

A dead letter is an entry of ``{tag}:dlq``: the original envelope fields plus ``dlq_stream``,
``dlq_entry``, ``dlq_group``, ``dlq_attempts``, ``dlq_error``, ``dlq_consumer``, ``dlq_at``.
Replay appends the envelope to ``{tag}:retry:<dlq_group>`` — only that group sees it again —
and removes the dead letter in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis


@dataclass(frozen=True)
class DeadLetter:
    shard: int
    id: str  # entry id in {tag}:dlq
    group: str
    stream: str
    entry: str
    type: str
    attempts: int
    error: str
    at: float
    fields: dict[str, str]

    @property
    def envelope_fields(self) -> dict[str, str]:
        return {k: v for k, v in self.fields.items() if not k.startswith(("dlq_", "_"))}


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters an operation applies to; empty fields match everything."""

    shard: int | None = None
    group: str | None = None
    type: str | None = None
    error: str | None = None  # substring, case-insensitive
    ids: tuple[str, ...] = ()

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.group is None or letter.group == self.group)
            and (self.type is None or letter.type == self.type)
            and (self.error is None or self.error.lower() in letter.error.lower())
            and (not self.ids or letter.id in self.ids)
        )


class DeadLetters:
    """Operator actions over every shard's DLQ."""

    def __init__(self, redis: AsyncRedis, layout: Layout) -> None:
        self.redis = redis
        self.layout = layout

    async def find(self, where: DeadLetterFilter | None = None, limit: int = 1000) -> list[DeadLetter]:
        """Dead letters matching ``where``, oldest first per shard."""
        where = where or DeadLetterFilter()
        shards = [where.shard] if where.shard is not None else range(self.layout.shards)
        found: list[DeadLetter] = []
        for shard in shards:
            key = self.layout.keys(shard).dlq
            for entry_id, fields in await self.redis.xrange(key, count=100_000):
                letter = _letter(shard, entry_id, fields)
                if where.matches(letter):
                    found.append(letter)
                    if len(found) >= limit:
                        return found
        return found

    async def size(self, shard: int) -> int:
        return int(await self.redis.xlen(self.layout.keys(shard).dlq))

    async def replay(
        self, where: DeadLetterFilter, *, dry_run: bool = False
    ) -> list[DeadLetter]:
        """Send matching dead letters back to their group's retry stream (attempts reset)."""
        letters = await self.find(where, limit=1_000_000)
        if dry_run:
            return letters
        for letter in letters:
            keys = self.layout.keys(letter.shard)
            fields = dict(letter.envelope_fields)
            fields["_origin"] = f"{letter.stream}/{letter.entry}"
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(keys.retry(letter.group), fields)
                pipe.xdel(keys.dlq, letter.id)
                await pipe.execute()
        return letters

    async def purge(self, where: DeadLetterFilter, *, dry_run: bool = False) -> list[DeadLetter]:
        """Delete matching dead letters for good."""
        letters = await self.find(where, limit=1_000_000)
        if not dry_run:
            for letter in letters:
                await self.redis.xdel(self.layout.keys(letter.shard).dlq, letter.id)
        return letters


def _letter(shard: int, entry_id: str, fields: dict[str, str]) -> DeadLetter:
    return DeadLetter(
        shard=shard,
        id=entry_id,
        group=fields.get("dlq_group", ""),
        stream=fields.get("dlq_stream", ""),
        entry=fields.get("dlq_entry", ""),
        type=fields.get("type", "?"),
        attempts=int(fields.get("dlq_attempts", "0") or 0),
        error=fields.get("dlq_error", ""),
        at=float(fields.get("dlq_at", "0") or 0),
        fields=fields,
    )
