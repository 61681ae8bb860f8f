"""Errors of the event store.

    EventStoreError
    ├── ConcurrencyConflict      expected_version did not match; nothing was written
    ├── PartialDuplicate         some (not all) event ids of an append were already recorded
    ├── InvalidAppend            the append was malformed (validated before any write)
    ├── TrackingConflict         a process recorder's tracking position was not new
    ├── ColdAggregate            the aggregate's stream was trimmed: its version is archived
    └── HistoryGap               a read's events were trimmed and no archive is wired to supply them
"""

from __future__ import annotations


class EventStoreError(Exception):
    """Base of the event store's errors."""


class ConcurrencyConflict(EventStoreError):
    """The aggregate moved on: its current version is not the one the writer expected."""

    def __init__(self, aggregate_id: str, current: int | None, expected: int | None) -> None:
        super().__init__(
            f"aggregate {aggregate_id!r} is at version {current}, expected {expected}"
        )
        self.aggregate_id = aggregate_id
        self.current = current
        self.expected = expected


class PartialDuplicate(EventStoreError):
    """An append mixed already-recorded event ids with new ones: refused as a whole."""


class InvalidAppend(EventStoreError):
    """The append itself is wrong (empty, mixed aggregates, unknown type, invalid data)."""


class TrackingConflict(EventStoreError):
    """A tracking position at or below the recorded one: the upstream event was processed."""


class ColdAggregate(EventStoreError):
    """The aggregate's hot stream was trimmed away; the append needs the archive's version."""


class HistoryGap(EventStoreError):
    """Events an aggregate read needs (those after ``after``) were trimmed from Redis and no
    archive is wired to read them from: the read is refused rather than stepping over them."""

    def __init__(self, aggregate_id: str, after: int, detail: str) -> None:
        super().__init__(
            f"aggregate {aggregate_id!r}: events after version {after} are missing: {detail}"
        )
        self.aggregate_id = aggregate_id
        self.after = after
