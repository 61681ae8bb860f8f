"""Reading a shard log for a projection: batches of decoded events, never a crash.

``EventStore.read_shard`` turns a whole batch into envelopes and fails on the first malformed
entry; a projector must instead step over such an entry (and count it), so it reads the raw
entries itself (``LogReader.shard_range``: the archive below the trim floor, Redis above).
Entries whose wire name the projection does not handle are skipped before their data is even
parsed, which is most of the log for most projections. A replay reads with a client of its own
that leaves the entries as Redis sent them (``undecoded_client``), and decodes only the fields
it uses.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, NamedTuple, cast

from eventstore.archive import Archive
from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.reading import position_of as position_of
from eventstore.redis_client import AsyncRedis, open_redis
from schemas.envelope import (
    EnvelopeView,
    LogEnvelope,
    MalformedEntry,
    decode_fields,
    log_envelope,
)
from schemas.envelope_sent import flat_log_envelope
from schemas.registry import Message, MessageRegistry, RegistryError, UnknownMessageType

# An entry: its id and its fields, by name (a client that decodes replies) or as Redis sent
# them, undecoded (``[b"id", id, b"agg", …]``, a replay's own client: ``undecoded_client``).
Fields = dict[str, str] | list[bytes]
Entry = tuple[str, Fields]


def fields_of(entry: Entry) -> dict[str, str]:
    """The entry's fields by name, however it was read."""
    fields = entry[1]
    return fields if type(fields) is dict else decode_fields(cast(list[bytes], fields))


def _as_sent(response: Any, **options: Any) -> Any:
    return response


@contextlib.asynccontextmanager
async def undecoded_client(url: str, *, timeout_s: float) -> AsyncIterator[AsyncRedis]:
    """A client of the replay's own whose XRANGE replies stay as Redis sent them: turning
    each entry into a dict of decoded text (redis-py's reply parsing) cost half of reading it
    (2.1-2.5 µs of 4.2-4.9 per entry, 106,300 synthetic entries), more than decoding the
    envelope from it. ``ShardReader.decode`` reads such an entry by place."""
    redis = await open_redis(url, decode_responses=False, socket_timeout=timeout_s)
    redis.set_response_callback("XRANGE", _as_sent)
    try:
        yield redis
    finally:
        await redis.aclose()


# Data texts up to this length are decoded once per reader (see ``ShardReader.decode``): short
# payloads repeat (a stage start, a completion by the same user). Longer ones up to
# ``CACHED_LONG_DATA_CHARS`` are kept apart: some repeat too (a classification, a reward: a
# fifth of a scan's events, whose validation was the most expensive step of folding them),
# others never do (answers, image URLs), and those only ever push out each other, never the
# short ones. Each table holds at most ``CACHED_DATA_ENTRIES`` (emptied when full).
CACHED_DATA_CHARS = 128
CACHED_LONG_DATA_CHARS = 1024
CACHED_DATA_ENTRIES = 4096


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Run a synchronous, allocation-heavy step without cyclic garbage collection.

    Decoding a batch allocates tens of thousands of acyclic objects (freed by reference
    counting); letting the collector run every few hundred allocations makes it rescan every
    batch still in flight, which cost more than the decoding itself (×2.5 CPU in a rebuild).
    Only used around code that does not yield to the event loop, or in a process whose loop
    does nothing but replay meanwhile (``parallel_replay``).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# A process that only replays (``projections.parallel``) leaves the collector off: a replay keeps
# a few batches of tens of thousands of freshly read entries and folded rows alive, which the
# collector, run every 700 allocations, rescanned until they died (about a third of reading a
# batch). Their objects are freed by reference counting; the few cycles (asyncio errors,
# tracebacks) wait for the ``gc.collect()`` it runs every ``REPLAY_GC_EVERY`` batches.
REPLAY_GC_EVERY = 50


class Decoded(NamedTuple):
    """An entry's envelope and message (a tuple: one is made per event a projection folds,
    and a frozen dataclass's ``__init__`` cost as much as the rest of a cached decode)."""

    envelope: EnvelopeView
    message: Message


_new_tuple = tuple.__new__  # ``Decoded(...)`` without its Python-level ``__new__``


class Skip(StrEnum):
    """Why an entry is not applied. Only UNKNOWN and MALFORMED count as skipped events."""

    IGNORED = "ignored"  # a well-formed event of a class this projection does not handle
    UNKNOWN = "unknown"  # a wire name (or schema version) this release does not know
    MALFORMED = "malformed"  # not an envelope, or data that does not validate


@dataclass(frozen=True)
class Batch:
    """Raw entries of one read; the checkpoint moves to ``last_position`` even past entries
    that are skipped. Entries are decoded only while they are folded (see ``commit.fold``)."""

    shard: int
    after: int
    entries: list[Entry]
    last_position: int

    @property
    def size(self) -> int:
        return self.last_position - self.after


class ShardReader:
    """Reads one projection's view of the shard logs (through the log's ``LogReader``)."""

    def __init__(
        self,
        redis: AsyncRedis,
        layout: Layout,
        registry: MessageRegistry,
        wire_names: frozenset[str],
        archive: Archive | None = None,
    ) -> None:
        self.layout = layout
        self.registry = registry
        self.wire_names = wire_names
        # (wire name, schema version, data text) → message, short texts only; the text is
        # bytes in an entry read undecoded
        self._decoded: dict[tuple[str, int, str | bytes], Message] = {}
        self._decoded_long: dict[tuple[str, int, str | bytes], Message] = {}  # ≤ 1024 long
        self._wire_names_sent = {name.encode(): name for name in wire_names}
        self._long_seen: set[int] = set()  # hashes of long texts decoded once (not kept yet)
        # positions below the trim floor come from the archive, in bulk
        self.log = LogReader(redis, layout, archive)

    async def read(self, shard: int, after: int, limit: int, *, upto: int | None = None) -> Batch:
        """Up to ``limit`` entries with ``after < position <= upto`` (no bound when None)."""
        raw = cast(list[Any], await self.log.shard_range(
            shard, after=after, limit=limit, upto=upto
        ))
        entries: list[Entry] = raw
        if raw and type(raw[0][0]) is bytes:  # read undecoded (``undecoded_client``)
            if type(raw[0][1]) is not list:  # never read parsed fields as if by place
                raise TypeError("XRANGE replies of an undecoded client came back parsed")
            entries = [(entry_id.decode(), fields) for entry_id, fields in raw]
        return Batch(shard, after, entries, position_of(entries[-1][0]) if entries else after)

    async def follow(
        self, shard: int, after: int, limit: int, block_ms: int
    ) -> AsyncGenerator[Batch, None]:
        """Batches of the shard log after ``after``, forever (``LogReader.follow``); an empty
        batch means nothing arrived within ``block_ms``."""
        async with aclosing(
            self.log.follow_shard(shard, after=after, batch=limit, block_ms=block_ms)
        ) as batches:
            async for found in batches:
                entries: list[Entry] = cast(list[Any], found)
                yield Batch(shard, after, entries, position_of(found[-1][0]) if found else after)
                after = position_of(found[-1][0]) if found else after

    async def event_id_at(self, shard: int, position: int) -> str | None:
        """The event id at ``position`` in either tier (None: no such entry)."""
        entry = await self.log.entry_at(shard, position)
        return None if entry is None else fields_of(entry).get("id")

    async def head(self, shard: int) -> int:
        """The last position of the shard log (0 when empty)."""
        return await self.log.head(shard)

    def _seen_once(self, key: tuple[str, int, str | bytes]) -> bool:
        """True the first time a long text is decoded (only its hash is remembered): most never
        come back, and keeping each of their messages cost more than decoding the few that do
        a second time."""
        seen, digest = self._long_seen, hash(key)
        if digest in seen:
            return False
        if len(seen) >= CACHED_DATA_ENTRIES:
            seen.clear()
        seen.add(digest)
        return True

    def _decode_by_name(self, shard: int, entry_id: str, flat: list[bytes]) -> Decoded | Skip:
        """An undecoded entry not in the store's field order, decoded through its dict."""
        try:
            fields = decode_fields(flat)
        except ValueError:  # not text, or not name-value pairs
            return Skip.MALFORMED
        return self.decode(shard, (entry_id, fields))

    def decode(self, shard: int, entry: Entry) -> Decoded | Skip:
        """The entry's envelope and message, or why it is skipped (never raises).

        The envelope is a ``LogEnvelope`` (every field checked, the id and data dict built
        only if a handler asks) and the message is validated from the data text itself
        (``MessageRegistry.decode_json``): the work per event a projector does not need."""
        entry_id, fields = entry
        flat: list[bytes] | None = None
        if type(fields) is list:  # read undecoded: by place, unless not in the store's order
            flat = fields
            if len(flat) != 18 or flat[8] != b"type":
                return self._decode_by_name(shard, entry_id, flat)
            name = self._wire_names_sent.get(flat[9])
            if name is None:
                sent = flat[9].decode(errors="replace")  # not text: no class has that name
                return Skip.IGNORED if self.registry.knows(sent) else Skip.UNKNOWN
        else:
            named = cast(dict[str, str], fields)
            name = named.get("type")
            if name not in self.wire_names:
                if name is None:
                    return Skip.MALFORMED
                return Skip.IGNORED if self.registry.knows(name) else Skip.UNKNOWN
        try:
            # ``position_of``, inlined (an entry id is ``<position>-<sequence>``)
            position = int(entry_id.partition("-")[0])
            envelope: LogEnvelope | None
            text: str | bytes
            if flat is not None:
                envelope = flat_log_envelope(flat, position, shard, name)
                if envelope is None:
                    return self._decode_by_name(shard, entry_id, flat)
                text = flat[13] or b"{}"
            else:
                envelope = log_envelope(named, position=position, shard=shard)
                # with its default when left out (``log_envelope`` fills it in)
                text = cast(dict[str, str], envelope.fields)["data"] or "{}"
            size = len(text)
            if size <= CACHED_DATA_CHARS:
                cache = self._decoded
            elif size <= CACHED_LONG_DATA_CHARS:
                cache = self._decoded_long
            else:
                long = self.registry.decode_json(name, envelope.schema_version, text)
                return _new_tuple(Decoded, (envelope, long))
            # Decoding is a pure function of (name, schema version, data), and messages are
            # frozen: an entry whose data was decoded before shares that message (handlers
            # never mutate what they are given).
            key = (name, envelope.schema_version, text)
            message: Message | None = cache.get(key)
            if message is None:
                message = self.registry.decode_json(name, envelope.schema_version, text)
                if cache is self._decoded_long and self._seen_once(key):
                    return _new_tuple(Decoded, (envelope, message))
                if len(cache) >= CACHED_DATA_ENTRIES:
                    cache.clear()
                cache[key] = message
            return _new_tuple(Decoded, (envelope, message))
        except UnknownMessageType:  # e.g. a schema version newer than this release
            return Skip.UNKNOWN
        except (MalformedEntry, RegistryError):
            return Skip.MALFORMED
