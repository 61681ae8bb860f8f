"""Writing the ``locations`` read model: what importers produce and how it is stored.

Rows are keyed by (source, source_key), so importing the same file again updates in place and
ids stay stable (clients may have bookmarked ``/locations/centers/{id}``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from readmodels.locations_categories import STORE_CATEGORIES

if TYPE_CHECKING:
    from readmodels.db import Pool

BATCH = 2000


@dataclass(frozen=True)
class LocationRecord:
    """One drop-off point as read from a dataset, before it has an id."""

    source: str
    source_key: str
    name: str
    latitude: float
    longitude: float
    store_category: str
    pickup_categories: tuple[str, ...] = ()
    road_address: str | None = None
    lot_address: str | None = None
    detail: str | None = None
    phone: str | None = None
    place_url: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    agency: str | None = None
    reference_date: date | None = None
    sample: bool = False

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("a location needs a name")
        if not (math.isfinite(self.latitude) and -90 <= self.latitude <= 90):
            raise ValueError(f"latitude out of range: {self.latitude}")
        if not (math.isfinite(self.longitude) and -180 <= self.longitude <= 180):
            raise ValueError(f"longitude out of range: {self.longitude}")
        if self.store_category not in STORE_CATEGORIES:
            raise ValueError(f"unknown store_category {self.store_category!r}")


_UPSERT = (
    "INSERT INTO locations (source, source_key, name, latitude, longitude, store_category,"
    " pickup_categories, road_address, lot_address, detail, phone, place_url, start_time,"
    " end_time, agency, reference_date, sample, imported_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, now())"
    " ON CONFLICT (source, source_key) DO UPDATE SET name = EXCLUDED.name,"
    " latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,"
    " store_category = EXCLUDED.store_category, pickup_categories = EXCLUDED.pickup_categories,"
    " road_address = EXCLUDED.road_address, lot_address = EXCLUDED.lot_address,"
    " detail = EXCLUDED.detail, phone = EXCLUDED.phone, place_url = EXCLUDED.place_url,"
    " start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time, agency = EXCLUDED.agency,"
    " reference_date = EXCLUDED.reference_date, sample = EXCLUDED.sample,"
    " imported_at = EXCLUDED.imported_at"
)


def _row(r: LocationRecord) -> tuple[object, ...]:
    return (
        r.source, r.source_key, r.name.strip(), r.latitude, r.longitude, r.store_category,
        list(r.pickup_categories), r.road_address, r.lot_address, r.detail, r.phone,
        r.place_url, r.start_time, r.end_time, r.agency, r.reference_date, r.sample,
    )


async def upsert_locations(pool: Pool, records: Iterable[LocationRecord]) -> int:
    """Insert or update ``records`` (in batches, each batch one transaction); returns how
    many were written. A key repeated within the input keeps its last row."""
    unique: dict[tuple[str, str], LocationRecord] = {}
    for record in records:
        unique[(record.source, record.source_key)] = record
    rows = [_row(r) for r in unique.values()]
    async with pool.acquire() as conn:
        for start in range(0, len(rows), BATCH):
            async with conn.transaction():
                await conn.executemany(_UPSERT, rows[start : start + BATCH])
    return len(rows)


async def replace_source(pool: Pool, source: str, records: Iterable[LocationRecord]) -> int:
    """Make ``source`` hold exactly ``records``: upsert them, then delete the dataset's rows
    that the new file no longer lists (a removed bin disappears). Returns rows written."""
    batch = [r for r in records if r.source == source]
    written = await upsert_locations(pool, batch)
    keys = [r.source_key for r in batch]
    async with pool.acquire() as conn:
        await conn.execute(
            "DELETE FROM locations WHERE source = $1 AND NOT (source_key = ANY($2::text[]))",
            source, keys,
        )
    return written


async def delete_source(pool: Pool, source: str) -> int:
    """Remove every row of one dataset; returns how many."""
    async with pool.acquire() as conn:
        status = await conn.execute("DELETE FROM locations WHERE source = $1", source)
    return int(status.split()[-1])


async def optimize_locations(pool: Pool) -> None:
    """Refresh statistics and the visibility map after an import, so the nearest query's
    index-only scan need not visit the table (VACUUM cannot run inside a transaction)."""
    async with pool.acquire() as conn:
        await conn.execute("VACUUM (ANALYZE) locations")
