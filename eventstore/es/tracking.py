"""eventsourcing tracking and process recorders: positions in ``{tag}:tracking:<name>``.

A tracking key holds the last processed notification id of one upstream application (a plain
integer string, the format ``append.lua`` reads and writes). A process recorder records its
new events and the tracking position in one ``append.lua`` call, so a replayed upstream event
is refused with ``IntegrityError`` and nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    ProcessRecorder,
    StoredEvent,
    Tracking,
    TrackingRecorder,
)
from redis.client import Pipeline

from eventstore.es.recorders import RedisApplicationRecorder
from eventstore.es.store import RedisDatastore, translated_errors


class RedisTrackingRecorder(TrackingRecorder):
    """Tracking positions of upstream applications, under the datastore's shard tag."""

    def __init__(self, datastore: RedisDatastore) -> None:
        self.datastore = datastore

    def insert_tracking(self, tracking: Tracking) -> None:
        """Record a position; ``IntegrityError`` unless it exceeds the recorded one."""
        key = self.datastore.keys.tracking(tracking.application_name)

        # append.lua cannot take a call without events, so a tracking-only write is a
        # WATCH/MULTI compare-and-set with the script's rule: new position > current (or 0).
        def advance(pipe: Pipeline) -> None:
            raw = pipe.get(key)
            current = int(raw) if raw is not None else 0
            if tracking.notification_id <= current:
                raise IntegrityError(
                    f"tracking {tracking.application_name!r}: position "
                    f"{tracking.notification_id} is not after {current}"
                )
            pipe.multi()
            pipe.set(key, tracking.notification_id)

        self.datastore.transaction(advance, key)

    def max_tracking_id(self, application_name: str) -> int | None:
        """The last recorded position of ``application_name``, ``None`` if there is none."""
        with translated_errors():
            raw = self.datastore.client.get(self.datastore.keys.tracking(application_name))
        return int(raw) if raw is not None else None


class RedisProcessRecorder(RedisTrackingRecorder, RedisApplicationRecorder, ProcessRecorder):
    """Application recorder that records a tracking position atomically with its events."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record events and the optional ``tracking=`` position in one script call."""
        tracking: Tracking | None = kwargs.get("tracking")
        if not stored_events:
            if tracking is not None:
                self.insert_tracking(tracking)
            return []
        return self.datastore.append(stored_events, tracking)
