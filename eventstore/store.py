"""The async event store on sharded Redis Streams (ARCHITECTURE §1).

``EventStore`` appends events of one aggregate atomically (one Lua call: version check,
idempotency by event id, contiguous shard positions), reads an aggregate or a shard log, tails a
shard, and appends commands with a client idempotency key.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Literal

from redis.exceptions import ResponseError

from eventstore.archive import Archive
from eventstore.errors import ColdAggregate, InvalidAppend
from eventstore.group_commit import GroupCommit, PlannedAppend
from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.redis_client import AsyncRedis, decodes_responses
from eventstore.scripts import append_args, script_source, translate_script_error
from eventstore.snapshots import FromSnapshot, Snapshot, SnapshotStreams
from schemas.envelope import Envelope
from schemas.registry import MessageRegistry, RegistryError

ANY: Literal["any"] = "any"
ExpectedVersion = int | Literal["any"]
IDEMPOTENCY_TTL_S = 24 * 3600


@dataclass(frozen=True)
class Recorded:
    """Where an appended event landed."""

    shard: int
    position: int
    version: int


@dataclass(frozen=True)
class AppendResult:
    records: list[Recorded]
    duplicate: bool  # True: an idempotent retry, nothing was written

    @property
    def last_version(self) -> int:
        return self.records[-1].version


@dataclass(frozen=True)
class CommandReceipt:
    shard: int
    entry_id: str
    command_id: str
    aggregate_id: str
    duplicate: bool


class EventStore:
    """Append and read events and commands. ``redis`` must decode responses to ``str``.

    With an ``archive`` every read merges the archive tier and the hot log (``merged``), and an
    append to an aggregate whose stream was trimmed away takes its version from the archive.
    """

    def __init__(
        self,
        redis: AsyncRedis,
        layout: Layout,
        registry: MessageRegistry | None = None,
        *,
        archive: Archive | None = None,
        group_window_s: float = 0.0,
    ) -> None:
        if not decodes_responses(redis):
            raise ValueError("EventStore needs a Redis client with decode_responses=True")
        self.redis = redis
        self.layout = layout
        self.registry = registry
        self.archive = archive
        self.log = LogReader(redis, layout, archive)  # every read goes through it
        self._append = redis.register_script(script_source("append"))
        # Concurrent appends share one round trip (each keeps its own result and error).
        self._group = GroupCommit(redis, script_source("append"), window_s=group_window_s)
        self._append_command = redis.register_script(script_source("append_command"))
        self._snapshots = SnapshotStreams(redis, archive)

    # -- writing -------------------------------------------------------------------------

    async def append(
        self, events: Sequence[Envelope], *, expected_version: ExpectedVersion
    ) -> AppendResult:
        """Append ``events`` (all of one aggregate) after ``expected_version``.

        ``expected_version`` is the aggregate's current version (0 for a new one) or ``ANY``.
        Raises ``ConcurrencyConflict`` (nothing written) when it does not match. Retrying with
        the same event ids writes nothing and returns the original positions. Concurrent calls
        share one round trip (``GroupCommit``) without sharing their outcome.
        """
        planned = self._plan(events, expected_version)
        try:
            reply = await self._group.submit(planned)
        except ColdAggregate:
            reply = await self._append_cold(planned)
        return _result(reply, planned.keys.shard)

    async def _append_cold(self, planned: PlannedAppend) -> Any:
        """Append to an aggregate whose stream was trimmed away: the archive's view of it goes
        with the call (rare, so alone and not grouped)."""
        shard = planned.keys
        hint = await self._archived_hint(planned.aggregate_key.removeprefix(f"{shard.tag}:agg:"))
        keys = [shard.events, shard.head, shard.event_ids, planned.aggregate_key, shard.cold]
        args = append_args("1", "", [f"{planned.expected}@{hint}", len(planned.rows)],
                           planned.rows)
        try:
            return await self._append(keys=keys, args=args)
        except ResponseError as exc:
            raise translate_script_error(str(exc)) from exc

    async def _archived_hint(self, aggregate_id: str) -> str:
        if self.archive is None:
            raise ColdAggregate(f"{aggregate_id}: trimmed from Redis and no archive is wired")
        head = await self.archive.aggregate_head(self.layout.shard_of(aggregate_id), aggregate_id)
        return f"{'' if head.version is None else head.version}:{head.archived}"

    async def append_batch(
        self, batches: Sequence[tuple[Sequence[Envelope], ExpectedVersion]]
    ) -> list[AppendResult]:
        """Several appends (each one aggregate) in one round trip, one script call per shard.

        Each append is atomic on its own; a failing one raises after the others are applied.
        """
        plans = [self._plan(events, expected) for events, expected in batches]
        await self._group.send(plans)
        results = []
        for planned in plans:
            try:
                reply = await planned.future
            except ColdAggregate:
                reply = await self._append_cold(planned)
            results.append(_result(reply, planned.keys.shard))
        return results

    def _plan(self, events: Sequence[Envelope], expected: ExpectedVersion) -> PlannedAppend:
        aggregate_id = check_append(events, expected, self.registry)
        shard = self.layout.keys_for(aggregate_id)
        return PlannedAppend(
            keys=shard,
            aggregate_key=shard.aggregate(aggregate_id),
            expected="*" if expected == ANY else expected,
            rows=[e.wire_values() for e in events],
        )

    async def append_command(
        self, command: Envelope, *, idempotency_key: str | None = None,
        document: tuple[str, str] | None = None,
    ) -> CommandReceipt:
        """Append a command to its target aggregate's shard, once per ``idempotency_key``.

        A repeated key returns the first command's receipt (``duplicate=True``) and writes
        nothing. Keys are kept for 24 h. Callers scope keys per user. ``document`` is a
        ``(role, value)`` the caller keeps beside the command's aggregate
        (``ShardKeys.document``), written in the same call before the command (also on a
        repeated key), kept as long as idempotency keys: one round trip instead of two.
        """
        validate_payloads([command], self.registry)
        shard = self.layout.keys_for(command.aggregate_id)
        keys = [shard.commands]
        optional = ""
        if idempotency_key:
            keys.append(shard.idempotency(idempotency_key))
            optional += "i"
        if document is not None:
            keys.append(shard.document(document[0], command.aggregate_id))
            optional += "d"
        args: list[Any] = [IDEMPOTENCY_TTL_S, optional, "" if document is None else document[1]]
        for field, value in command.to_fields().items():
            args += [field, value]
        entry, cid, status, agg = await self._append_command(keys=keys, args=args)
        return CommandReceipt(shard.shard, entry, cid, agg, status == "dup")

    # -- reading -------------------------------------------------------------------------

    async def read_aggregate(
        self, aggregate_id: str, *, after_version: int = 0, limit: int | None = None
    ) -> list[Envelope]:
        """Events of one aggregate with version > ``after_version``, in version order."""
        shard = self.layout.shard_of(aggregate_id)
        entries = await self.log.aggregate(aggregate_id, after=after_version, limit=limit)
        return [Envelope.from_fields(fields, shard=shard) for _, fields in entries]

    async def read_from_snapshot(self, aggregate_id: str) -> FromSnapshot:
        """The aggregate's newest snapshot (its TTL renewed) and its events after the
        snapshot's version (all of them without one), in one round trip while those events are
        in Redis; ``HistoryGap`` when some were trimmed and no archive is wired."""
        return await self._snapshots.read_from_snapshot(
            self.layout.keys_for(aggregate_id), aggregate_id
        )

    async def save_snapshot(self, snapshot: Snapshot, *, replacing: bool = False) -> bool:
        """Keep ``snapshot`` beside its aggregate (never in the log); False, and nothing
        written, when one newer is kept, or one at its version unless ``replacing``."""
        keys = self.layout.keys_for(snapshot.aggregate_id)
        return await self._snapshots.save(keys, snapshot, replacing=replacing)

    async def version_of(self, aggregate_id: str) -> int:
        """The aggregate's current version (0 when it has no events)."""
        return await self.log.aggregate_version(aggregate_id)

    async def last_event(self, aggregate_id: str) -> Envelope | None:
        """The aggregate's last event (with its shard position), None when it has none."""
        last = await self.log.aggregate_last(aggregate_id)
        shard = self.layout.shard_of(aggregate_id)
        return None if last is None else Envelope.from_fields(last[1], shard=shard)

    async def read_shard(
        self, shard: int, *, after_position: int = 0, limit: int = 1000
    ) -> list[Envelope]:
        """Up to ``limit`` entries of the shard log with position > ``after_position``."""
        entries = await self.log.shard_range(shard, after=after_position, limit=limit)
        return [_from_log(entry_id, fields, shard) for entry_id, fields in entries]

    async def head(self, shard: int) -> int:
        """The last position written to the shard log (0 when empty)."""
        return await self.log.head(shard)

    async def tail(
        self, shard: int, *, after_position: int = 0, batch: int = 1000, block_ms: int = 1000
    ) -> AsyncGenerator[list[Envelope], None]:
        """Batches of the shard log from ``after_position`` on, waiting for new entries
        (``LogReader.follow``: the archived part first, in bulk; never an empty batch)."""
        follow = self.log.follow_shard(shard, after=after_position, batch=batch, block_ms=block_ms)
        async with aclosing(follow) as batches:
            async for entries in batches:
                if entries:
                    yield [_from_log(entry_id, fields, shard) for entry_id, fields in entries]


def check_append(
    events: Sequence[Envelope], expected: ExpectedVersion, registry: MessageRegistry | None
) -> str:
    """The rules of one append, checked before anything is written (every store applies them):
    one aggregate, a valid expected version, distinct event ids, payloads the registry accepts
    (unless already validated). Returns the aggregate id; raises ``InvalidAppend``."""
    if not events:
        raise InvalidAppend("nothing to append")
    aggregate_id = events[0].aggregate_id
    if expected != ANY and (not isinstance(expected, int) or expected < 0):
        raise InvalidAppend(f"expected_version must be >= 0 or ANY, not {expected!r}")
    if len(events) > 1:  # most appends are one event: nothing to compare it with
        if any(e.aggregate_id != aggregate_id for e in events):
            raise InvalidAppend("one append writes to one aggregate")
        if len({e.id.int for e in events}) != len(events):  # int: UUID.__hash__ is Python code
            raise InvalidAppend("event ids repeat within the append")
    validate_payloads(events, registry)
    return aggregate_id


def validate_payloads(events: Sequence[Envelope], registry: MessageRegistry | None) -> None:
    """Refuse (``InvalidAppend``) a payload the registry does not accept; envelopes built from
    a message are already valid."""
    if registry is None:
        return
    for e in events:
        if e.validated:
            continue
        try:
            registry.decode(e.type, e.schema_version, e.data)
        except RegistryError as exc:
            raise InvalidAppend(f"event {e.id} ({e.type}) rejected: {exc}") from exc


def _from_log(entry_id: str, fields: dict[str, str], shard: int) -> Envelope:
    return Envelope.from_fields(fields, position=int(entry_id.split("-", 1)[0]), shard=shard)


def _result(reply: list[Any], shard: int) -> AppendResult:
    # reply: [status, position, version, ...], or a group's ["run", first position, first
    # version, count]; the script's numbers arrive as Python ints
    if reply[0] == "run":
        _, position, version, count = reply
        records = [_recorded(shard, position + k, version + k) for k in range(count)]
        return _append_result(records, False)
    records = [_recorded(shard, reply[i], reply[i + 1]) for i in range(1, len(reply), 2)]
    return _append_result(records, reply[0] == "dup")


# The two results of every append, built without their frozen dataclass ``__init__`` (one
# ``object.__setattr__`` call per field, half of building a single append's result): the
# instance's ``__dict__`` is filled directly, which gives the same objects.
_new = object.__new__


def _recorded(shard: int, position: int, version: int) -> Recorded:
    recorded = _new(Recorded)
    recorded.__dict__.update(shard=shard, position=position, version=version)
    return recorded


def _append_result(records: list[Recorded], duplicate: bool) -> AppendResult:
    result = _new(AppendResult)
    result.__dict__.update(records=records, duplicate=duplicate)
    return result

