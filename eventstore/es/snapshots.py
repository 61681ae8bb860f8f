"""eventsourcing aggregate recorder for snapshots (and any purpose other than ``events``).

Snapshots are not events: they must stay out of the shard log, which every projection reads,
and ``append.lua`` always writes the log. So they live in their own streams
``{tag}:<purpose>:<originator id>`` (entry id ``<version>-1``, envelope fields as events),
written by a WATCH/MULTI transaction that refuses a version at or below the stream's last one.
A snapshot older than the newest one is therefore refused (``IntegrityError``); such a
snapshot would never be read anyway. The async store keeps its own snapshots
(``eventstore.snapshots``) in the same place (``ShardKeys.snapshots``) and entry shape: it
ignores entries of a ``type`` (topic) not its own, but an application's repository would not,
so an application snapshotting Eco²'s own aggregates (users) needs its own ``ECO2_NAMESPACE``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, IntegrityError, StoredEvent
from redis.client import Pipeline

from eventstore.es import codec as es_codec
from eventstore.es.store import Entry, RedisDatastore, group_by_originator

_PURPOSE = re.compile(r"^[a-z][a-z0-9_]*$")


class RedisSnapshotRecorder(AggregateRecorder):
    """Per-originator streams outside the shard log, under the datastore's shard tag."""

    def __init__(self, datastore: RedisDatastore, purpose: str = "snapshots") -> None:
        if purpose == "events" or not _PURPOSE.match(purpose):
            raise ValueError(f"invalid recorder purpose {purpose!r}")
        self.datastore = datastore
        self.purpose = purpose

    def stream_key(self, originator_id: UUID | str) -> str:
        """The stream of one originator."""
        return f"{self.datastore.keys.tag}:{self.purpose}:{originator_id}"

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record the items atomically; ``IntegrityError`` if a version is not new."""
        if not stored_events:
            return None
        groups = [
            (self.stream_key(agg), indexes) for agg, indexes in group_by_originator(stored_events)
        ]
        ts = repr(time.time())

        def write(pipe: Pipeline) -> None:
            for key, indexes in groups:
                last = cast(list[Entry], pipe.xrevrange(key, count=1))
                floor = es_codec.entry_number(last[0][0]) if last else None
                for index in indexes:
                    version = stored_events[index].originator_version
                    if version < 0 or (floor is not None and version <= floor):
                        raise IntegrityError(f"{key}: version {version} is not after {floor}")
                    floor = version
            pipe.multi()
            for key, indexes in groups:
                for index in indexes:
                    stored = stored_events[index]
                    fields = es_codec.event_fields(stored, ts)
                    pipe.xadd(key, fields, id=f"{stored.originator_version}-1")

        self.datastore.transaction(write, *(key for key, _ in groups))
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """Items of one originator with ``gt < version <= lte``, ascending unless ``desc``."""
        key = self.stream_key(originator_id)
        return self.datastore.select_stream(key, gt=gt, lte=lte, desc=desc, limit=limit)
