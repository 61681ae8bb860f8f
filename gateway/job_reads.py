"""What the gateway reads about a job: who owns it, its events, its snapshot's version.

Ownership is the ``user_id`` of the job's first event (``ScanQueued``), else of its snapshot,
else of the *pending owner* record the gateway writes at submit time — a job whose command is
accepted but whose first event is not appended yet still belongs to its user, so opening its
stream right after ``POST /scan`` works (the stream is registered before it reads, so nothing
appended later is missed). Without any of the three the job is unknown (404).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from eventstore.archive import Archive, Entry
from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.redis_client import AsyncRedis
from projections.snapshot_reads import SNAPSHOT_ROLE, SNAPSHOT_TTL_S, parse_snapshot
from schemas.envelope import Envelope, MalformedEntry
from schemas.registry import Message, MessageRegistry, RegistryError

log = logging.getLogger(__name__)

OWNER_ROLE = "owner"  # the gateway's document beside a job's stream: {tag}:owner:<job>
ROLES = (SNAPSHOT_ROLE, OWNER_ROLE)  # what an owner lookup reads beside the job's stream
History = list[tuple[Envelope, Message | None]]


def pending_owner_key(layout: Layout, job_id: str) -> str:
    """Who submitted a job that has no events yet (the gateway's pending-owner record, written
    with the job's first command: ``EventStore.append_command(document=...)``)."""
    return layout.keys_for(job_id).document(OWNER_ROLE, job_id)


@dataclass(frozen=True)
class JobOwner:
    user_id: str
    kind: str  # aggregate type; "" while the job has no events yet


class JobReads:
    """Reads for one gateway process; ``redis`` is the live hub's bounded reader."""

    def __init__(
        self,
        redis: AsyncRedis,
        layout: Layout,
        registry: MessageRegistry,
        archive: Archive | None = None,
    ) -> None:
        self.layout = layout
        self.registry = registry
        self.log = LogReader(redis, layout, archive)  # the archive: old jobs once Redis is trimmed

    async def owner(self, job_id: str) -> JobOwner | None:
        """The job's owner, or None for a job nobody submitted."""
        glance = await self.log.glance(job_id, ROLES)
        first = glance.first
        if first is None and not any(glance.documents.values()):  # an old job: maybe archived
            found = await self.log.aggregate(job_id, limit=1)
            first = found[0] if found else None
        return self._owner(self._decoded(job_id, [first] if first else []), glance.documents)

    async def owner_and_events(self, job_id: str) -> tuple[JobOwner | None, History]:
        """The job's owner and all its events, in one round trip while they are in Redis: a
        stream's opening takes one read of the hub's few reader connections, not two."""
        entries, documents = await self.log.aggregate_with(job_id, ROLES)
        history = self._decoded(job_id, entries)
        return self._owner(history, documents), history

    async def events(self, job_id: str, *, after: int = 0) -> History:
        """The job's events with version > ``after``; the message is None when undecodable
        (written by a newer release): such an event is counted but not shown."""
        return self._decoded(job_id, await self.log.aggregate(job_id, after=after))

    def _decoded(self, job_id: str, entries: list[Entry]) -> History:
        shard = self.layout.shard_of(job_id)
        out: list[tuple[Envelope, Message | None]] = []
        for entry_id, fields in entries:
            try:
                envelope = Envelope.from_fields(fields, shard=shard)
            except MalformedEntry:
                log.warning("job %s: malformed entry %s skipped", job_id, entry_id)
                continue
            try:
                out.append((envelope, self.registry.decode_envelope(envelope)))
            except RegistryError as exc:
                log.warning("job %s v%d not shown: %s", job_id, envelope.version, exc)
                out.append((envelope, None))
        return out

    @staticmethod
    def _owner(history: History, documents: dict[str, str | None]) -> JobOwner | None:
        """The ``user_id`` of the job's first event, else of its snapshot, else its pending
        owner's."""
        if history:
            envelope, message = history[0]
            user = getattr(message, "user_id", None)
            if not (isinstance(user, str) and user):
                user = envelope.metadata.user_id
            if user:
                return JobOwner(user, envelope.aggregate_type)
        view = parse_snapshot(documents[SNAPSHOT_ROLE])
        if view is not None and view.user_id:
            return JobOwner(view.user_id, view.kind)
        pending = documents[OWNER_ROLE]
        return JobOwner(pending, "") if pending else None

    async def version(self, job_id: str) -> int:
        """The job's current version (0: no events yet)."""
        return await self.log.aggregate_version(job_id)

    async def snapshot_holds(self, job_id: str, version: int, recorded_at: float) -> bool:
        """Whether the job's snapshot holds ``version`` — or can no longer be waited for: a job
        whose event ``version`` was recorded (``recorded_at``) longer than the snapshot TTL ago
        may have no snapshot any more, and result reads fold the job's own stream then."""
        raw = await self.log.document(job_id, SNAPSHOT_ROLE)
        view = parse_snapshot(raw)
        if view is not None:
            return view.version >= version
        return raw is None and time.time() - recorded_at >= SNAPSHOT_TTL_S
