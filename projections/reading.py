"""Reading a shard log for a projection: batches of decoded events, never a crash.

``EventStore.read_shard`` turns a whole batch into envelopes and fails on the first malformed
entry; a projector must instead step over such an entry (and count it), so it reads the raw
entries itself. Entries whose wire name the projection does not handle are skipped before their
data is even parsed, which is most of the log for most projections.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis

from eventstore.keys import Layout
from schemas.envelope import Envelope, MalformedEntry
from schemas.registry import Message, MessageRegistry, RegistryError, UnknownMessageType


@dataclass(frozen=True)
class Decoded:
    envelope: Envelope
    message: Message


@dataclass
class Batch:
    """What one read returned. ``last_position`` covers skipped entries too: the checkpoint
    moves past them."""

    after: int
    last_position: int
    events: list[Decoded] = field(default_factory=list)
    ignored: int = 0  # well-formed events of classes this projection does not handle
    unknown: int = 0  # wire names this release does not know (e.g. written by a newer one)
    malformed: int = 0  # entries that are not envelopes, or data that does not validate

    @property
    def size(self) -> int:
        return self.last_position - self.after

    @property
    def skipped(self) -> int:
        return self.unknown + self.malformed


class ShardReader:
    """Reads one projection's view of the shard logs."""

    def __init__(
        self,
        redis: aioredis.Redis,
        layout: Layout,
        registry: MessageRegistry,
        wire_names: frozenset[str],
    ) -> None:
        self.redis = redis
        self.layout = layout
        self.registry = registry
        self.wire_names = wire_names

    async def read(
        self, shard: int, after: int, limit: int, *, upto: int | None = None
    ) -> Batch:
        """Up to ``limit`` entries with ``after < position <= upto`` (no bound when None)."""
        key = self.layout.keys(shard).events
        high = "+" if upto is None else f"{upto}-0"
        if upto is not None and upto <= after:
            return Batch(after, after)
        raw = cast(
            list[tuple[str, dict[str, str]]],
            await self.redis.xrange(key, min=f"{after + 1}-0", max=high, count=limit),
        )
        return self.decode(shard, after, raw)

    async def wait(self, shard: int, after: int, block_ms: int) -> None:
        """Block until the shard log has an entry after ``after`` or ``block_ms`` passes."""
        key = self.layout.keys(shard).events
        await self.redis.xread({key: f"{after}-0"}, count=1, block=block_ms)

    async def head(self, shard: int) -> int:
        """The last position of the shard log (0 when empty)."""
        return int(cast(Any, await self.redis.get(self.layout.keys(shard).head)) or 0)

    def decode(self, shard: int, after: int, raw: list[tuple[str, dict[str, str]]]) -> Batch:
        batch = Batch(after, after)
        for entry_id, fields in raw:
            position = int(entry_id.split("-", 1)[0])
            batch.last_position = position
            name = fields.get("type")
            if name not in self.wire_names:
                if name is None:
                    batch.malformed += 1
                elif self.registry.knows(name):
                    batch.ignored += 1
                else:
                    batch.unknown += 1
                continue
            try:
                envelope = Envelope.from_fields(fields, position=position, shard=shard)
                message = self.registry.decode_envelope(envelope)
            except UnknownMessageType:  # e.g. a schema version newer than this release
                batch.unknown += 1
                continue
            except (MalformedEntry, RegistryError):
                batch.malformed += 1
                continue
            batch.events.append(Decoded(envelope, message))
        return batch
