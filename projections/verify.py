"""Verify: rebuild into scratch tables up to the live checkpoints and compare checksums.

The live side is read in one ``REPEATABLE READ`` snapshot (checkpoints and rows together, so
they are consistent even while the live projector runs: both commit in the same transaction).
The scratch copy is replayed to exactly those positions, then both are hashed row by row
(``md5`` of the row's text, in key order); the table checksum is the md5 of those hashes.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from projections.commit import load_checkpoints
from projections.context import ReadSide
from projections.projection import Projection
from projections.replay import ProgressCallback, replay
from readmodels import versions
from readmodels.tables import TableSpec

if TYPE_CHECKING:
    from readmodels.db import Conn

RowHashes = dict[tuple[Any, ...], str]


@dataclass(frozen=True)
class TableComparison:
    table: str
    live_rows: int
    rebuilt_rows: int
    live_checksum: str
    rebuilt_checksum: str
    only_live: list[tuple[Any, ...]] = field(default_factory=list)  # keys (first few)
    only_rebuilt: list[tuple[Any, ...]] = field(default_factory=list)
    different: list[tuple[Any, ...]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return self.live_checksum == self.rebuilt_checksum


@dataclass(frozen=True)
class VerifyReport:
    name: str
    version: int
    positions: dict[int, int]
    tables: list[TableComparison]

    @property
    def clean(self) -> bool:
        return all(t.clean for t in self.tables)


async def row_hashes(conn: Conn, spec: TableSpec, suffix: str) -> RowHashes:
    """md5 of every row of one table version, by primary key, in key order."""
    key = ", ".join(spec.key)
    rows = await conn.fetch(
        f"SELECT {key}, md5(t::text) AS h FROM {spec.physical(suffix)} t ORDER BY {key}"
    )
    return {tuple(r[c] for c in spec.key): r["h"] for r in rows}


def checksum(hashes: RowHashes) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for value in hashes.values():  # already in key order
        digest.update(value.encode())
    return digest.hexdigest()


def compare(table: str, live: RowHashes, rebuilt: RowHashes, limit: int) -> TableComparison:
    return TableComparison(
        table=table,
        live_rows=len(live),
        rebuilt_rows=len(rebuilt),
        live_checksum=checksum(live),
        rebuilt_checksum=checksum(rebuilt),
        only_live=[k for k in live if k not in rebuilt][:limit],
        only_rebuilt=[k for k in rebuilt if k not in live][:limit],
        different=[k for k, h in live.items() if k in rebuilt and rebuilt[k] != h][:limit],
    )


async def verify(
    side: ReadSide,
    projection: Projection,
    *,
    batch_size: int = 5000,
    on_progress: ProgressCallback | None = None,
    max_differences: int = 20,
) -> VerifyReport:
    """Compare the live version of ``projection`` with a fresh replay at the same positions."""
    group = projection.group
    async with side.pool.acquire() as conn:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            version = await versions.active_version(conn, projection.name)
            if version is None:
                raise LookupError(f"{projection.name} has no active version")
            live_suffix = versions.suffix_of(version)
            positions = await load_checkpoints(conn, projection.name, live_suffix)
            live = {spec.name: await row_hashes(conn, spec, live_suffix) for spec in group.tables}
        scratch = "s" + uuid.uuid4().hex[:12]
        await versions.create_tables(conn, group, scratch)
    try:
        targets = {s: positions.get(s, 0) for s in range(side.layout.shards)}
        await replay(
            side, projection, scratch, targets, batch_size=batch_size, on_progress=on_progress
        )
        async with side.pool.acquire() as conn:
            tables = [
                compare(
                    spec.name,
                    live[spec.name],
                    await row_hashes(conn, spec, scratch),
                    max_differences,
                )
                for spec in group.tables
            ]
    finally:
        async with side.pool.acquire() as conn:
            await versions.drop_tables(conn, group, scratch)
    return VerifyReport(projection.name, version, targets, tables)
