"""Shard routing and the key names of a shard (see ARCHITECTURE §1).

``shard_of`` is a stable hash (CRC-32), never Python's ``hash()``: a key lands on the same shard
in every process and release. Every key of shard ``k`` carries the hash tag ``{<ns>:s<k>}`` so a
Lua script can touch all of them and Redis Cluster moves a shard as one hash slot.

Only the log's own keys are named here. Other packages keep *documents* beside an aggregate's
stream under a role they define (the snapshot projector's ``state``, the gateway's ``owner``):
``ShardKeys.document`` gives them the shard's tag, and ``LogReader`` reads them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cached_property


def shard_of(key: str, shards: int) -> int:
    """The shard that owns ``key`` (an aggregate or job id) among ``shards`` shards."""
    return zlib.crc32(key.encode("utf-8")) % shards


# The roles of the log's own keys: no other package's document may take one of them.
LOG_ROLES = frozenset(
    {"events", "head", "eids", "commands", "dlq", "live", "agg", "retry", "idem", "tracking",
     "floor", "cold", "lease", "snapshots"}
)


@dataclass(frozen=True)
class ShardKeys:
    """The Redis keys of one shard."""

    namespace: str
    shard: int

    # Computed once per instance (every append names these keys; ``Layout`` keeps one
    # instance per shard). ``cached_property`` writes the instance's ``__dict__`` directly, so
    # it works on a frozen dataclass.
    @cached_property
    def tag(self) -> str:
        return "{" + f"{self.namespace}:s{self.shard}" + "}"

    @cached_property
    def events(self) -> str:
        return f"{self.tag}:events"

    @cached_property
    def head(self) -> str:
        return f"{self.tag}:head"

    @cached_property
    def event_ids(self) -> str:
        return f"{self.tag}:eids"

    @property
    def commands(self) -> str:
        return f"{self.tag}:commands"

    @property
    def dlq(self) -> str:
        return f"{self.tag}:dlq"

    @property
    def live(self) -> str:
        return f"{self.tag}:live"

    def aggregate(self, aggregate_id: str) -> str:
        return f"{self.tag}:agg:{aggregate_id}"

    def snapshots(self, aggregate_id: str) -> str:
        """The aggregate's snapshot stream (``eventstore.snapshots``; the eventsourcing
        recorders' ``snapshots`` purpose names the same key)."""
        return f"{self.tag}:snapshots:{aggregate_id}"

    def retry(self, group: str) -> str:
        return f"{self.tag}:retry:{group}"

    def idempotency(self, key: str) -> str:
        return f"{self.tag}:idem:{key}"

    def tracking(self, name: str) -> str:
        return f"{self.tag}:tracking:{name}"

    def document(self, role: str, key: str) -> str:
        """A value another package keeps beside the shard's log (e.g. a job's snapshot), under
        the shard's hash tag so it moves with the shard. The role and what the value means
        belong to that package; the log's own roles are refused."""
        if role in LOG_ROLES or not role or ":" in role:
            raise ValueError(f"{role!r} is not a document role (the log's own, empty, or with ':')")
        return f"{self.tag}:{role}:{key}"

    @property
    def floor(self) -> str:
        """The trim point: positions at or below it may be only in the archive (Postgres)."""
        return f"{self.tag}:floor"

    @cached_property
    def cold(self) -> str:
        """The highest trim point at which an aggregate stream was removed whole: an append
        to a missing stream must then learn the aggregate's version from the archive."""
        return f"{self.tag}:cold"

    def lease(self, role: str) -> str:
        """The shard's lease for ``role`` (one owner per shard, e.g. the snapshot projector)."""
        return f"{self.tag}:lease:{role}"


@dataclass(frozen=True)
class Layout:
    """All shards of one deployment: ``namespace`` and the fixed shard count."""

    namespace: str = "eco2"
    shards: int = 4

    def shard_of(self, key: str) -> int:
        return shard_of(key, self.shards)

    @cached_property
    def _keys(self) -> tuple[ShardKeys, ...]:
        return tuple(ShardKeys(self.namespace, k) for k in range(self.shards))

    def keys(self, shard: int) -> ShardKeys:
        if not 0 <= shard < self.shards:
            raise ValueError(f"shard {shard} is outside 0..{self.shards - 1}")
        return self._keys[shard]

    def keys_for(self, key: str) -> ShardKeys:
        """The keys of the shard that owns ``key`` (on every append: one shared instance per
        shard, its key names computed once)."""
        return self._keys[zlib.crc32(key.encode("utf-8")) % self.shards]

    def all(self) -> list[ShardKeys]:
        return list(self._keys)
