"""eventsourcing aggregate and application recorders on one shard of the log.

Events go to ``{tag}:agg:<originator id>`` (entry id ``<version>-1``) and the shard log
``{tag}:events`` (entry id ``<position>-0``) in one ``append.lua`` call; notification ids are
shard-log positions. See ``eventstore.es.persistence`` for the whole design.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    Notification,
    StoredEvent,
    Subscription,
)

from eventstore.es import codec as es_codec
from eventstore.es.store import Entry, RedisDatastore, translated_errors

# Topic filters read the log in pages at least this long, so rare topics cost few round trips.
TOPIC_SCAN_PAGE = 500
# A subscription blocks this long per XREAD, so stop() from another thread takes effect soon.
SUBSCRIBE_BLOCK_MS = 250


class RedisAggregateRecorder(AggregateRecorder):
    """Events of aggregates, recorded through ``append.lua`` on the datastore's shard.

    Every aggregate is kept under the recorder's shard tag, whatever ``shard_of(id)`` says:
    one insert is one script call, and a script touches one shard only.
    """

    def __init__(self, datastore: RedisDatastore) -> None:
        self.datastore = datastore

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record the events atomically; ``IntegrityError`` if any version is taken."""
        if stored_events:
            self.datastore.append(stored_events)
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
        """Events of one aggregate with ``gt < version <= lte``, ascending unless ``desc``."""
        key = self.datastore.keys.aggregate(str(originator_id))
        return self.datastore.select_stream(key, gt=gt, lte=lte, desc=desc, limit=limit)


class RedisApplicationRecorder(RedisAggregateRecorder, ApplicationRecorder):
    """Aggregate recorder whose notification log is the shard log (contiguous positions)."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Record the events atomically; their notification ids (log positions), in order."""
        if not stored_events:
            return []
        return self.datastore.append(stored_events)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """Up to ``limit`` notifications from ``start`` (exclusive if asked) to ``stop``."""
        if limit < 1:
            return []
        first = 1 if start is None else (start if inclusive_of_start else start + 1)
        first = max(first, 1)
        if stop is not None and stop < first:
            return []
        high = "+" if stop is None else f"{stop}-0"
        wanted = {topic.encode() for topic in topics}
        page = max(limit, TOPIC_SCAN_PAGE) if wanted else limit
        uuid_ids = self.datastore.uuid_ids
        found: list[Notification] = []
        while True:
            entries = self.datastore.read_log(first, high, page)
            for entry_id, fields in entries:
                if wanted and fields.get(b"type") not in wanted:
                    continue
                found.append(es_codec.notification_of(entry_id, fields, uuid_ids=uuid_ids))
                if len(found) == limit:
                    return found
            if not entries or (len(entries) < page and first > self.datastore.floor()):
                return found
            first = es_codec.entry_number(entries[-1][0]) + 1

    def max_notification_id(self) -> int | None:
        """The last position of the shard log, ``None`` while it is empty."""
        with translated_errors():
            head = self.datastore.client.get(self.datastore.keys.head)
        position = int(head) if head is not None else 0
        return position or None

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        """Notifications after ``gt``, then new ones as they are recorded (blocking XREAD)."""
        return RedisSubscription(self, gt=gt, topics=topics)

    def read_after(
        self, position: int, topics: Sequence[str], block_ms: int
    ) -> tuple[list[Notification], int]:
        """One blocking read of the log after ``position``: notifications and the last position.

        Entries filtered out by ``topics`` still advance the returned position.
        """
        entries = self.datastore.read_log(position + 1, "+", TOPIC_SCAN_PAGE)
        if not entries:
            with translated_errors():
                reply = self.datastore.client.xread(
                    {self.datastore.keys.events: f"{position}-0"},
                    count=TOPIC_SCAN_PAGE,
                    block=block_ms,
                )
            entries = _xread_entries(reply)
            if entries and es_codec.entry_number(entries[0][0]) != position + 1:
                # Trimmed while we waited: take the gap from the archive first.
                entries = self.datastore.read_log(position + 1, "+", TOPIC_SCAN_PAGE)
        if not entries:
            return [], position
        wanted = {topic.encode() for topic in topics}
        uuid_ids = self.datastore.uuid_ids
        notifications = [
            es_codec.notification_of(entry_id, fields, uuid_ids=uuid_ids)
            for entry_id, fields in entries
            if not wanted or fields.get(b"type") in wanted
        ]
        return notifications, es_codec.entry_number(entries[-1][0])


def _xread_entries(reply: Any) -> list[Entry]:
    """The entries of a one-stream XREAD reply, in RESP2 (list) or RESP3 (dict) shape."""
    if not reply:
        return []
    if isinstance(reply, dict):
        batches = next(iter(reply.values()))
        return list(batches[0]) if batches and isinstance(batches[0], list) else list(batches)
    return list(reply[0][1])


class RedisSubscription(Subscription[RedisApplicationRecorder]):
    """Iterates the shard log from a position and then blocks for new entries.

    Runs in the iterating thread (no helper thread): each ``__next__`` either returns a buffered
    notification or blocks in XREAD for at most ``SUBSCRIBE_BLOCK_MS`` before checking whether
    the subscription was stopped.
    """

    def __init__(
        self,
        recorder: RedisApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._buffer: deque[Notification] = deque()
        self._position = gt or 0

    def __next__(self) -> Notification:
        while not self._has_been_stopped:
            if self._buffer:
                notification = self._buffer.popleft()
                self._last_notification_id = notification.id
                return notification
            batch, self._position = self._recorder.read_after(
                self._position, self._topics, SUBSCRIBE_BLOCK_MS
            )
            self._buffer.extend(batch)
        raise StopIteration
