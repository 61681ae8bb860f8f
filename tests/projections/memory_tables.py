"""Folding events into read-model rows without a database, for the fold tests.

``fold_log`` runs the projector's own ``fold`` over the shard logs of the in-memory event
store; ``MemoryTables`` keeps the rows the ``set``/``add``/``insert_once`` changes leave (as
``Changes.write`` upserts them) and the SQL statements in the order they would run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import schemas
from eventstore.memory import MemoryEventStore
from projections.changes import Changes, Key, RowChange, Statement
from projections.fold import Counts, fold
from projections.projection import Projection
from projections.reading import Entry, ShardReader

Rows = dict[str, dict[Key, dict[str, Any]]]


@dataclass
class MemoryTables:
    rows: Rows = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)

    def apply(self, changes: Changes) -> None:
        for step in changes.steps():
            if isinstance(step, Statement):
                self.statements.append(step)
            else:
                self._upsert(step)

    def _upsert(self, change: RowChange) -> None:
        table = self.rows.setdefault(change.table, {})
        if change.once:
            table.setdefault(change.key, dict(change.sets))
            return
        row = table.setdefault(change.key, {})
        row.update(change.sets)
        for column, delta in change.adds.items():
            row[column] = row.get(column, 0) + delta

    def row(self, table: str, *key: Any) -> dict[str, Any]:
        return self.rows[table][key]

    def sql(self, start: str) -> list[tuple[Any, ...]]:
        """Arguments of the statements that begin with ``start``, in order."""
        return [s.args for s in self.statements if s.sql.startswith(start)]


def reader_for(projection: Projection) -> ShardReader:
    # Decoding needs the registry only; no connection is ever made.
    return ShardReader(None, None, schemas.registry, projection.wire_names(schemas.registry))  # type: ignore[arg-type]


async def entries_of(store: MemoryEventStore, shard: int) -> list[Entry]:
    """The shard log as the projector reads it: (entry id, fields) pairs."""
    log = await store.read_shard(shard, limit=1_000_000)
    return [(f"{e.position}-0", e.to_fields()) for e in log]


async def fold_log(
    store: MemoryEventStore,
    projections: Iterable[Projection],
    *,
    batch: int = 1000,
    shards: Iterable[int] | None = None,
    tables: MemoryTables | None = None,
) -> tuple[MemoryTables, Counts]:
    """Fold every shard (in ``shards`` order) in batches of ``batch`` entries, as projectors
    do, into ``tables``."""
    tables = tables or MemoryTables()
    counts = Counts()
    order = list(range(store.layout.shards)) if shards is None else list(shards)
    for projection in projections:
        reader = reader_for(projection)
        for shard in order:
            entries = await entries_of(store, shard)
            for start in range(0, len(entries), batch):
                folded = fold(projection, reader, shard, entries[start : start + batch])
                tables.apply(folded.changes)
                counts.add(folded.counts)
    return tables, counts
