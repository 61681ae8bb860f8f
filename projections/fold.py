"""Folding a batch of raw log entries into the row changes of one projection."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from projections.changes import Changes
from projections.projection import Projection
from projections.reading import Entry, ShardReader, Skip, paused_gc

log = logging.getLogger(__name__)


@dataclass
class Counts:
    applied: int = 0  # events whose changes were recorded
    ignored: int = 0  # events of classes the projection does not handle
    unknown: int = 0
    malformed: int = 0
    failed: int = 0  # the handler raised, or the database rejected the event's rows

    def add(self, other: Counts) -> None:
        for name in ("applied", "ignored", "unknown", "malformed", "failed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def skipped(self) -> int:
        return self.unknown + self.malformed + self.failed


@dataclass
class Folded:
    changes: Changes
    counts: Counts = field(default_factory=Counts)


def fold(
    projection: Projection, reader: ShardReader, shard: int, entries: Iterable[Entry]
) -> Folded:
    """Decode ``entries`` one at a time and record their changes (decoded objects are not
    kept: only the folded rows live on while the batch is written)."""
    folded = Folded(projection.changes())
    counts = folded.counts
    with paused_gc():
        for entry in entries:
            item = reader.decode(shard, entry)
            if isinstance(item, Skip):
                setattr(counts, item.value, getattr(counts, item.value) + 1)
                continue
            try:
                handled = projection.apply(folded.changes, item.message, item.envelope)
            except Exception:
                counts.failed += 1
                log.exception(
                    "%s: handler failed on %s at shard %s position %s; skipped",
                    projection.name,
                    type(item.message).__name__,
                    shard,
                    item.envelope.position,
                )
                continue
            if handled:
                counts.applied += 1
            else:
                counts.ignored += 1
    return folded
