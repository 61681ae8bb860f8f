"""The event store port: what handlers, the gateway and tests use of the log.

Two adapters implement it: ``eventstore.store.EventStore`` (sharded Redis Streams, the real
one) and ``eventstore.memory.MemoryEventStore`` (its in-memory twin, for handler, graph and
projection tests without servers). ``tests/eventstore/store_contract.py`` holds the one suite
both must pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from eventstore.keys import Layout
from eventstore.snapshots import FromSnapshot, Snapshot
from eventstore.store import AppendResult, CommandReceipt, ExpectedVersion
from schemas.envelope import Envelope


class EventStorePort(Protocol):
    """Append and read events of sharded logs; append commands once per idempotency key."""

    layout: Layout

    async def append(
        self, events: Sequence[Envelope], *, expected_version: ExpectedVersion
    ) -> AppendResult:
        """Append ``events`` (all of one aggregate) after ``expected_version`` (the current
        version, 0 for a new aggregate, or ``ANY``), atomically, at contiguous shard positions.

        Raises ``ConcurrencyConflict`` (nothing written) on a version mismatch,
        ``InvalidAppend`` on a malformed append, ``PartialDuplicate`` when only some event ids
        were recorded before. Repeating all ids writes nothing and returns the first positions.
        """
        ...

    async def append_batch(
        self, batches: Sequence[tuple[Sequence[Envelope], ExpectedVersion]]
    ) -> list[AppendResult]:
        """Several appends, each atomic on its own; the first failure raises after the others
        were applied."""
        ...

    async def append_command(
        self, command: Envelope, *, idempotency_key: str | None = None,
        document: tuple[str, str] | None = None,
    ) -> CommandReceipt:
        """Append a command to its aggregate's shard; a repeated ``idempotency_key`` returns
        the first receipt with ``duplicate=True`` and writes nothing. ``document`` (role,
        value) is kept beside the command's aggregate, written before the command."""
        ...

    async def read_aggregate(
        self, aggregate_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[Envelope]:
        """Events of one aggregate with version > ``after_version``, in version order;
        ``HistoryGap`` when some were trimmed and no archive is wired to supply them (an
        aggregate trimmed away whole reads as empty then, like a new one)."""
        ...

    async def read_from_snapshot(self, aggregate_id: str) -> FromSnapshot:
        """The aggregate's newest snapshot (``snapshot`` None when there is none or it is
        unreadable) and its events after the stored snapshot's version, ``after`` (all of them
        when none is stored), as stream entries; ``archived`` tells whether any had to be read
        from the archive. Reading a snapshot renews its expiry. Raises ``HistoryGap`` when
        some of those events were trimmed and no archive is wired to supply them."""
        ...

    async def save_snapshot(self, snapshot: Snapshot, *, replacing: bool = False) -> bool:
        """Keep ``snapshot`` beside its aggregate, outside the log; False (nothing written)
        when one newer is kept already, or one at its version unless ``replacing`` (the
        caller found that one unusable: of another kind or format, or unreadable)."""
        ...

    async def version_of(self, aggregate_id: str) -> int:
        """The aggregate's current version (0 when it has no events)."""
        ...

    async def last_event(self, aggregate_id: str) -> Envelope | None:
        """The aggregate's last event (with its shard position), None when it has none."""
        ...

    async def read_shard(
        self, shard: int, *, after_position: int = 0, limit: int = 1000
    ) -> list[Envelope]:
        """Up to ``limit`` entries of the shard log with position > ``after_position``."""
        ...

    async def head(self, shard: int) -> int:
        """The last position written to the shard log (0 when empty)."""
        ...

    def tail(
        self, shard: int, *, after_position: int = 0, batch: int = 1000, block_ms: int = 1000
    ) -> AsyncIterator[list[Envelope]]:
        """Batches of the shard log from ``after_position`` on, waiting for new entries."""
        ...
