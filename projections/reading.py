"""Reading a shard log for a projection: batches of decoded events, never a crash.

``EventStore.read_shard`` turns a whole batch into envelopes and fails on the first malformed
entry; a projector must instead step over such an entry (and count it), so it reads the raw
entries itself (``LogReader.shard_range``: the archive below the trim floor, Redis above).
Entries whose wire name the projection does not handle are skipped before their data is even
parsed, which is most of the log for most projections.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncGenerator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from eventstore.archive import Archive
from eventstore.archive import Entry as Entry
from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.reading import position_of as position_of
from eventstore.redis_client import AsyncRedis
from schemas.envelope import EnvelopeView, MalformedEntry, log_envelope
from schemas.registry import Message, MessageRegistry, RegistryError, UnknownMessageType

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
        # (wire name, schema version, data text) → message, short texts only
        self._decoded: dict[tuple[str, int, str], Message] = {}
        self._decoded_long: dict[tuple[str, int, str], Message] = {}  # up to 1024 characters
        self._long_seen: set[int] = set()  # hashes of long texts decoded once (not kept yet)
        # positions below the trim floor come from the archive, in bulk
        self.log = LogReader(redis, layout, archive)

    async def read(self, shard: int, after: int, limit: int, *, upto: int | None = None) -> Batch:
        """Up to ``limit`` entries with ``after < position <= upto`` (no bound when None)."""
        raw = await self.log.shard_range(shard, after=after, limit=limit, upto=upto)
        return Batch(shard, after, raw, position_of(raw[-1][0]) if raw else after)

    async def follow(
        self, shard: int, after: int, limit: int, block_ms: int
    ) -> AsyncGenerator[Batch, None]:
        """Batches of the shard log after ``after``, forever (``LogReader.follow``); an empty
        batch means nothing arrived within ``block_ms``."""
        async with aclosing(
            self.log.follow_shard(shard, after=after, batch=limit, block_ms=block_ms)
        ) as batches:
            async for raw in batches:
                yield Batch(shard, after, raw, position_of(raw[-1][0]) if raw else after)
                after = position_of(raw[-1][0]) if raw else after

    async def event_id_at(self, shard: int, position: int) -> str | None:
        """The event id at ``position`` in either tier (None: no such entry)."""
        entry = await self.log.entry_at(shard, position)
        return None if entry is None else entry[1].get("id")

    async def head(self, shard: int) -> int:
        """The last position of the shard log (0 when empty)."""
        return await self.log.head(shard)

    def _seen_once(self, key: tuple[str, int, str]) -> bool:
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

    def decode(self, shard: int, entry: Entry) -> Decoded | Skip:
        """The entry's envelope and message, or why it is skipped (never raises).

        The envelope is a ``LogEnvelope`` (every field checked, the id and data dict built
        only if a handler asks) and the message is validated from the data text itself
        (``MessageRegistry.decode_json``): the work per event a projector does not need."""
        entry_id, fields = entry
        name = fields.get("type")
        if name not in self.wire_names:
            if name is None:
                return Skip.MALFORMED
            return Skip.IGNORED if self.registry.knows(name) else Skip.UNKNOWN
        try:
            # ``position_of``, inlined (an entry id is ``<position>-<sequence>``)
            position = int(entry_id.partition("-")[0])
            envelope = log_envelope(fields, position=position, shard=shard)
            text = envelope.fields["data"] or "{}"  # with its default when left out
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
