"""Folding a batch of raw log entries into the row changes of one projection."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import cast

from projections.changes import Changes
from projections.halts import EventRejected
from projections.projection import Projection
from projections.reading import (
    Decoded,
    Entry,
    ShardReader,
    Skip,
    fields_of,
    paused_gc,
    position_of,
)

log = logging.getLogger(__name__)


@dataclass
class Counts:
    applied: int = 0  # events whose changes were recorded
    ignored: int = 0  # events of classes the projection does not handle
    skipped: int = 0  # events an operator decided to skip (``eco2 projections skip``)

    def add(self, other: Counts) -> None:
        for name in ("applied", "ignored", "skipped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Folded:
    changes: Changes
    counts: Counts = field(default_factory=Counts)


def fold(
    projection: Projection,
    reader: ShardReader,
    shard: int,
    entries: Iterable[Entry],
    skips: Mapping[int, str] | None = None,
) -> Folded:
    """Decode ``entries`` one at a time and record their changes (decoded objects are not
    kept: only the folded rows live on while the batch is written).

    An entry the projection cannot apply raises ``EventRejected`` — unless ``skips`` (position
    → event id, the operator's decisions) names that very event."""
    folded = Folded(projection.changes())
    changes, counts = folded.changes, folded.counts
    handlers, decode = projection.handlers, reader.decode  # ``Projection.apply``, inlined
    skips = skips or {}
    applied = ignored = 0
    with paused_gc():
        for entry in entries:
            if skips and skips.get(position_of(entry[0])) == fields_of(entry).get("id", ""):
                counts.skipped += 1
                continue
            item = decode(shard, entry)
            if type(item) is not Decoded:  # an exact type check: ``isinstance`` cost more
                if item is Skip.IGNORED:
                    ignored += 1
                    continue
                skip = cast(Skip, item)
                raise _rejected(projection, shard, entry, skip.value, _why(skip, entry))
            envelope, message = item
            handler = handlers.get(type(message))
            if handler is None:
                ignored += 1
                continue
            try:
                handler(changes, message, envelope)
            except Exception as exc:
                log.exception(
                    "%s: handler failed on %s at shard %s position %s",
                    projection.name, type(message).__name__, shard, envelope.position,
                )
                raise _rejected(
                    projection, shard, entry, "handler", f"{type(exc).__name__}: {exc}"
                ) from exc
            applied += 1
    counts.applied += applied
    counts.ignored += ignored
    return folded


def _why(skip: Skip, entry: Entry) -> str:
    fields = fields_of(entry)
    name = fields.get("type")
    if skip is Skip.UNKNOWN:
        return f"type {name!r} (schema version {fields.get('sv', '1')}) is unknown to this release"
    return f"entry of type {name!r} is not a valid envelope or its data does not validate"


def _rejected(
    projection: Projection, shard: int, entry: Entry, kind: str, error: str
) -> EventRejected:
    return EventRejected(
        projection.name,
        shard,
        position_of(entry[0]),
        kind=kind,
        error=error,
        event_id=fields_of(entry).get("id"),
        event_type=fields_of(entry).get("type"),
    )
