"""The in-memory twin of ``eventstore.store.EventStore`` (the port in ``eventstore.port``).

Same rules as the Redis store and its ``append.lua``: one aggregate per append, optimistic
concurrency on the aggregate's version, idempotency by event id (all ids known: the original
positions come back; some: refused), contiguous positions per shard, entries stored as the
flat field maps of ``schemas.envelope`` so reads return fresh envelopes exactly as Redis does.
Every call first yields to the event loop once, as a round trip would, then runs to the end
without another yield: each call is atomic, like a Lua script. For tests and local tools; it
keeps everything for the life of the object.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from eventstore.errors import ConcurrencyConflict, PartialDuplicate
from eventstore.keys import Layout
from eventstore.snapshots import FromSnapshot, Snapshot
from eventstore.store import (
    ANY,
    IDEMPOTENCY_TTL_S,
    AppendResult,
    CommandReceipt,
    ExpectedVersion,
    Recorded,
    check_append,
    validate_payloads,
)
from schemas.envelope import Envelope
from schemas.registry import MessageRegistry

Fields = dict[str, str]


@dataclass
class _Shard:
    log: list[Fields] = field(default_factory=list)  # position p is log[p - 1]
    event_ids: dict[str, Recorded] = field(default_factory=dict)
    commands: list[tuple[str, Fields]] = field(default_factory=list)
    idempotency: dict[str, tuple[float, CommandReceipt]] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)  # document key → value
    # Set (and replaced) on every append, to wake the tails waiting for new entries.
    appended: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryEventStore:
    """Append and read events and commands, kept in this process's memory."""

    def __init__(self, layout: Layout, registry: MessageRegistry | None = None) -> None:
        self.layout = layout
        self.registry = registry
        self._shards = [_Shard() for _ in range(layout.shards)]
        self._aggregates: dict[str, list[Fields]] = {}  # fields with "pos", in version order
        self._command_ids = itertools.count(1)
        # The newest snapshot entry per aggregate (version, fields), as Redis keeps it; no expiry.
        self._snapshots: dict[str, tuple[int, Fields]] = {}

    def _shard(self, shard: int) -> _Shard:
        return self._shards[self.layout.keys(shard).shard]  # keys() checks the range

    # -- writing -------------------------------------------------------------------------

    async def append(
        self, events: Sequence[Envelope], *, expected_version: ExpectedVersion
    ) -> AppendResult:
        """Append ``events`` (all of one aggregate) after ``expected_version``; see
        ``EventStorePort.append``."""
        check_append(events, expected_version, self.registry)
        await asyncio.sleep(0)
        return self._write(events, expected_version)

    async def append_batch(
        self, batches: Sequence[tuple[Sequence[Envelope], ExpectedVersion]]
    ) -> list[AppendResult]:
        """Several appends, each atomic on its own; the first failure raises after the others
        were applied."""
        for events, expected in batches:
            check_append(events, expected, self.registry)
        await asyncio.sleep(0)
        results: list[AppendResult] = []
        failure: Exception | None = None
        for events, expected in batches:
            try:
                results.append(self._write(events, expected))
            except (ConcurrencyConflict, PartialDuplicate) as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
        return results

    def _write(self, events: Sequence[Envelope], expected: ExpectedVersion) -> AppendResult:
        aggregate_id = events[0].aggregate_id
        shard_no = self.layout.shard_of(aggregate_id)
        shard = self._shards[shard_no]
        known = [shard.event_ids[str(e.id)] for e in events if str(e.id) in shard.event_ids]
        if len(known) == len(events):
            return AppendResult(known, duplicate=True)
        if known:
            first = next(e for e in events if str(e.id) in shard.event_ids)
            raise PartialDuplicate(f"event {first.id} was already recorded, others were not")
        stream = self._aggregates.setdefault(aggregate_id, [])
        current = len(stream)
        if expected != ANY and current != expected:
            raise ConcurrencyConflict(aggregate_id, current, int(expected))
        records = []
        for version, envelope in enumerate(events, start=current + 1):
            fields = envelope.to_fields()
            fields["ver"] = str(version)
            shard.log.append(fields)
            position = len(shard.log)
            stream.append({**fields, "pos": str(position)})
            recorded = Recorded(shard_no, position, version)
            shard.event_ids[fields["id"]] = recorded
            records.append(recorded)
        shard.appended.set()
        shard.appended = asyncio.Event()
        return AppendResult(records, duplicate=False)

    async def append_command(
        self, command: Envelope, *, idempotency_key: str | None = None,
        document: tuple[str, str] | None = None,
    ) -> CommandReceipt:
        """Append a command to its target aggregate's shard, once per ``idempotency_key``
        (kept for 24 h, as in Redis); ``document`` is kept beside its aggregate."""
        validate_payloads([command], self.registry)
        await asyncio.sleep(0)
        shard_no = self.layout.shard_of(command.aggregate_id)
        shard = self._shards[shard_no]
        now = time.time()
        if document is not None:
            role, value = document
            shard.documents[self.layout.keys(shard_no).document(role, command.aggregate_id)] = value
        if idempotency_key:
            seen = shard.idempotency.get(idempotency_key)
            if seen is not None and seen[0] > now:
                first = seen[1]
                return CommandReceipt(
                    shard_no, first.entry_id, first.command_id, first.aggregate_id, True
                )
        entry_id = f"{int(now * 1000)}-{next(self._command_ids)}"
        shard.commands.append((entry_id, command.to_fields()))
        receipt = CommandReceipt(shard_no, entry_id, str(command.id), command.aggregate_id, False)
        if idempotency_key:
            shard.idempotency[idempotency_key] = (now + IDEMPOTENCY_TTL_S, receipt)
        return receipt

    # -- reading -------------------------------------------------------------------------

    async def read_aggregate(
        self, aggregate_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[Envelope]:
        """Events of one aggregate with version > ``after_version``, in version order."""
        await asyncio.sleep(0)
        stream = self._aggregates.get(aggregate_id, [])[max(after_version, 0) :]
        shard = self.layout.shard_of(aggregate_id)
        chosen = stream if limit is None else stream[:limit]
        return [Envelope.from_fields(fields, shard=shard) for fields in chosen]

    async def read_from_snapshot(self, aggregate_id: str) -> FromSnapshot:
        """The aggregate's newest snapshot and its events after the snapshot's version."""
        await asyncio.sleep(0)
        after, fields = self._snapshots.get(aggregate_id, (0, None))
        snapshot = None if fields is None else Snapshot.of_entry(aggregate_id, fields)
        if snapshot is not None and snapshot.version != after:
            snapshot = None
        stream = self._aggregates.get(aggregate_id, [])[after:]
        shard = self.layout.shard_of(aggregate_id)
        events = [Envelope.from_fields(fields, shard=shard) for fields in stream]
        return FromSnapshot(snapshot, after, events, archived=False)

    async def save_snapshot(self, snapshot: Snapshot, *, replacing: bool = False) -> bool:
        """Keep ``snapshot`` unless one newer is kept, or one at its version and not
        ``replacing`` (False then)."""
        if snapshot.version < 1:
            raise ValueError(f"a snapshot follows version 1 or later, not {snapshot.version}")
        await asyncio.sleep(0)
        return self.put_snapshot_entry(
            snapshot.aggregate_id, snapshot.version, snapshot.fields(), replacing=replacing
        )

    def put_snapshot_entry(
        self, aggregate_id: str, version: int, fields: Fields, *, replacing: bool = False
    ) -> bool:
        """Keep ``fields`` as the aggregate's snapshot entry at ``version`` unless one newer,
        or one at that version and not ``replacing``, is kept (the twin of writing its
        snapshot stream; tests use it to store what another release or a damaged write left;
        not part of the port)."""
        kept = self._snapshots.get(aggregate_id)
        if kept is not None and (kept[0] > version or (kept[0] == version and not replacing)):
            return False
        self._snapshots[aggregate_id] = (version, dict(fields))
        return True

    async def version_of(self, aggregate_id: str) -> int:
        """The aggregate's current version (0 when it has no events)."""
        await asyncio.sleep(0)
        return len(self._aggregates.get(aggregate_id, []))

    async def last_event(self, aggregate_id: str) -> Envelope | None:
        """The aggregate's last event (with its shard position), None when it has none."""
        await asyncio.sleep(0)
        stream = self._aggregates.get(aggregate_id)
        if not stream:
            return None
        return Envelope.from_fields(stream[-1], shard=self.layout.shard_of(aggregate_id))

    async def read_shard(
        self, shard: int, *, after_position: int = 0, limit: int = 1000
    ) -> list[Envelope]:
        """Up to ``limit`` entries of the shard log with position > ``after_position``."""
        await asyncio.sleep(0)
        return self._entries(shard, after_position, limit)

    def _entries(self, shard: int, after: int, limit: int) -> list[Envelope]:
        log = self._shard(shard).log
        start = max(after, 0)
        return [
            Envelope.from_fields(fields, position=position, shard=shard)
            for position, fields in enumerate(log[start : start + limit], start=start + 1)
        ]

    async def head(self, shard: int) -> int:
        """The last position written to the shard log (0 when empty)."""
        await asyncio.sleep(0)
        return len(self._shard(shard).log)

    async def tail(
        self, shard: int, *, after_position: int = 0, batch: int = 1000, block_ms: int = 1000
    ) -> AsyncIterator[list[Envelope]]:
        """Batches of the shard log from ``after_position`` on, waiting for new entries."""
        state = self._shard(shard)
        while True:
            entries = self._entries(shard, after_position, batch)
            if entries:
                after_position = entries[-1].position or after_position
                yield entries
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.appended.wait(), block_ms / 1000)

    def document(self, aggregate_id: str, role: str) -> str | None:
        """The value kept beside ``aggregate_id`` under ``role`` by ``append_command`` (the
        twin of reading ``ShardKeys.document``; not part of the port)."""
        keys = self.layout.keys_for(aggregate_id)
        return self._shards[keys.shard].documents.get(keys.document(role, aggregate_id))

    def read_commands(self, shard: int) -> list[tuple[str, Envelope]]:
        """Every command appended to ``shard``, as (entry id, envelope), oldest first (the
        twin of reading ``{tag}:commands``; not part of the port)."""
        return [
            (entry_id, Envelope.from_fields(fields, shard=shard))
            for entry_id, fields in self._shard(shard).commands
        ]
