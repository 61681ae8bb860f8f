"""Export the archive for analysts: one Parquet (or JSONL) file per shard and UTC day.

Columns are the envelope's, typed: ``shard`` int32, ``position`` int64, ``event_id``,
``aggregate_id``, ``aggregate_type``, ``type``, ``schema_version`` strings, ``version`` int64,
``data`` and ``metadata`` JSON text (DuckDB: ``data::JSON ->> '$.field'``), ``ts``
timestamp (UTC, microseconds). Rows are in position order within a file. Each shard is read
with a server-side cursor, so memory stays flat whatever the archive's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from eventstore.archive import Pool

SCHEMA = pa.schema(
    [
        ("shard", pa.int32()),
        ("position", pa.int64()),
        ("event_id", pa.string()),
        ("aggregate_id", pa.string()),
        ("aggregate_type", pa.string()),
        ("version", pa.int64()),
        ("type", pa.string()),
        ("schema_version", pa.string()),
        ("data", pa.string()),
        ("metadata", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
    ]
)
FETCH = 10_000


@dataclass(frozen=True)
class ExportQuery:
    since: date | None = None  # first UTC day included
    until: date | None = None  # last UTC day included
    types: tuple[str, ...] = ()  # event type names; empty = all


def _bounds(query: ExportQuery) -> tuple[float, float]:
    low = (
        datetime.combine(query.since, datetime.min.time(), UTC).timestamp()
        if query.since else float("-inf")
    )
    high = (
        datetime.combine(query.until + timedelta(days=1), datetime.min.time(), UTC).timestamp()
        if query.until else float("inf")
    )
    return low, high


class _Files:
    """The open output files of one shard, one per day."""

    def __init__(self, folder: Path, shard: int, fmt: str) -> None:
        self.folder, self.shard, self.fmt = folder, shard, fmt
        self.parquet: dict[date, pq.ParquetWriter] = {}
        self.jsonl: dict[date, Any] = {}
        self.counts: dict[date, int] = {}

    def path(self, day: date) -> Path:
        return self.folder / f"events_s{self.shard}_{day.isoformat()}.{self.fmt}"

    def write(self, day: date, rows: list[dict[str, Any]]) -> None:
        self.counts[day] = self.counts.get(day, 0) + len(rows)
        if self.fmt == "parquet":
            writer = self.parquet.get(day)
            if writer is None:
                writer = self.parquet[day] = pq.ParquetWriter(self.path(day), SCHEMA)
            writer.write_table(pa.Table.from_pylist(rows, schema=SCHEMA))
            return
        out = self.jsonl.get(day)
        if out is None:
            out = self.jsonl[day] = self.path(day).open("w", encoding="utf-8")
        for row in rows:
            line = dict(row, ts=row["ts"].isoformat())
            out.write(json.dumps(line, ensure_ascii=False) + "\n")

    def close(self) -> list[tuple[Path, int]]:
        for writer in self.parquet.values():
            writer.close()
        for out in self.jsonl.values():
            out.close()
        return [(self.path(day), n) for day, n in sorted(self.counts.items())]


async def export(pool: Pool, folder: Path, query: ExportQuery, fmt: str) -> list[tuple[Path, int]]:
    """Write the matching archived events under ``folder``; returns (file, events) pairs."""
    if fmt not in ("parquet", "jsonl"):
        raise ValueError(f"unknown export format {fmt!r}")
    folder.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once, before any I/O wait)
    low, high = _bounds(query)
    written: list[tuple[Path, int]] = []
    async with pool.acquire() as conn:
        shards = [r["shard"] for r in await conn.fetch(
            "SELECT shard FROM event_log_archived ORDER BY shard")]
        for shard in shards:
            files = _Files(folder, int(shard), fmt)
            try:
                async with conn.transaction():
                    cursor = conn.cursor(
                        "SELECT shard, position, event_id::text AS event_id, aggregate_id,"
                        " aggregate_type, version, type, schema_version, data, metadata, ts"
                        " FROM event_log WHERE shard = $1 AND ts >= $2 AND ts < $3"
                        " AND (cardinality($4::text[]) = 0 OR type = ANY($4))"
                        " ORDER BY position",
                        shard, low, high, list(query.types),
                        prefetch=FETCH,
                    )
                    batch: dict[date, list[dict[str, Any]]] = {}
                    pending = 0
                    async for record in cursor:
                        row = dict(record)
                        row["ts"] = datetime.fromtimestamp(row["ts"], UTC)
                        batch.setdefault(row["ts"].date(), []).append(row)
                        pending += 1
                        if pending >= FETCH:
                            for day, rows in batch.items():
                                files.write(day, rows)
                            batch, pending = {}, 0
                    for day, rows in batch.items():
                        files.write(day, rows)
            finally:
                written += files.close()
    return written
