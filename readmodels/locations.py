"""Queries of the ``locations`` read model: nearest drop-off points, text search, suggestions.

``nearest`` is the one the chat agents use as well as ``GET /locations/centers``::

    centers = await nearest(pool, 37.5665, 126.9780, radius_m=3000, category="전지", limit=5)

How it stays fast without PostGIS: it asks for the points within a small circle first and
widens it (×4) only while fewer than ``limit`` are found. Each step reads the 0.01° latitude
strips of the circle's bounding box through the (lat_band, longitude) btree and orders the
few candidates by exact haversine distance. Once ``limit`` points lie within radius r, no
point outside r can be nearer, so the first r that yields enough is the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from readmodels.locations_categories import (
    STORE_CATEGORIES,
    normalize_store_category,
    pickup_filter,
)
from readmodels.locations_geo import HAVERSINE_SQL, box_around, distance_text, is_open_at

if TYPE_CHECKING:
    import asyncpg

    from readmodels.db import Conn, Pool

    Executor: TypeAlias = Pool | Conn

MIN_RADIUS_M = 100
MAX_RADIUS_M = 50_000
FIRST_RING_M = 500  # dense city data has 20 bins within a few hundred metres
RING_GROWTH = 4
MAX_LIMIT = 200

_COLUMNS = (
    "id, name, source, road_address, lot_address, detail, latitude, longitude,"
    " store_category, pickup_categories, phone, place_url, start_time, end_time, agency, sample"
)
_QUALIFIED = ", ".join(f"l.{c.strip()}" for c in _COLUMNS.split(","))


@dataclass(frozen=True)
class Center:
    """One drop-off point; ``distance_m`` is set when the query had an origin."""

    id: int
    name: str
    source: str
    road_address: str | None
    lot_address: str | None
    detail: str | None
    latitude: float
    longitude: float
    store_category: str
    pickup_categories: tuple[str, ...]
    phone: str | None
    place_url: str | None
    start_time: str | None
    end_time: str | None
    agency: str | None
    sample: bool
    distance_m: float | None = None

    @property
    def address(self) -> str:
        """The road address, else the lot address, else ''."""
        return self.road_address or self.lot_address or ""

    @property
    def distance_text(self) -> str | None:
        return None if self.distance_m is None else distance_text(self.distance_m)

    def is_open(self, at: datetime) -> bool | None:
        """Open at ``at`` by its listed hours; None when the hours are unknown."""
        return is_open_at(self.start_time, self.end_time, at)


def _center(row: asyncpg.Record) -> Center:
    fields: dict[str, Any] = dict(row)
    fields["pickup_categories"] = tuple(fields["pickup_categories"] or ())
    return Center(**fields)


def check_origin(lat: float, lon: float) -> None:
    """Raise ``ValueError`` unless (lat, lon) is a finite WGS84 coordinate."""
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise ValueError("latitude and longitude must be finite numbers")
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("latitude must be within ±90 and longitude within ±180")


async def nearest(
    db: Executor,
    lat: float,
    lon: float,
    radius_m: float = 5000,
    category: str | None = None,
    limit: int = 20,
    *,
    store_category: str | None = None,
) -> list[Center]:
    """Up to ``limit`` points within ``radius_m`` metres of (lat, lon), nearest first.

    ``category`` filters on what a point takes (a pickup category such as '전지' or
    '의류및원단'; aliases like '폐건전지' or 'battery' are understood) or, when it names one,
    on what a point is (zero_waste_shop, recycling_center, '재활용센터', …);
    ``store_category`` filters on what it is as well. Ties are broken by id.
    """
    check_origin(lat, lon)
    if not 0 < radius_m <= MAX_RADIUS_M:
        raise ValueError(f"radius_m must be in (0, {MAX_RADIUS_M}]")
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be in 1..{MAX_LIMIT}")
    pickup, store = _filters(category, store_category)
    ring = min(float(radius_m), FIRST_RING_M)
    while True:
        found = await _within(db, lat, lon, ring, pickup, store, limit)
        if len(found) >= limit or ring >= radius_m:
            return found
        ring = min(float(radius_m), ring * RING_GROWTH)


def _filters(
    category: str | None, store_category: str | None
) -> tuple[list[str] | None, str | None]:
    """(pickup categories, any of which a point must take; store category) to filter on; a
    ``category`` naming a kind of place (the chat agents pass 'recycling_center' as readily
    as 'battery') filters on that. The PWA's keys (``clear_pet``, ``public_dropbox``, …) work
    too (``locations_categories.pickup_filter``)."""
    store = normalize_store_category(store_category)
    as_store = normalize_store_category(category)
    if as_store in STORE_CATEGORIES and store in (None, as_store):
        return None, as_store
    pickups = pickup_filter(category)
    return (None if pickups is None else list(pickups)), store


async def _within(
    db: Executor, lat: float, lon: float, radius_m: float,
    pickup: list[str] | None, store: str | None, limit: int,
) -> list[Center]:
    box = box_around(lat, lon, radius_m)
    # The inner query reads only columns the strip index carries (an index-only scan once
    # the table is vacuumed); only the `limit` winners are fetched from the table.
    rows = await db.fetch(
        f"SELECT {_QUALIFIED}, near.distance_m FROM ("
        f"  SELECT id, {HAVERSINE_SQL} AS distance_m FROM locations"
        "   WHERE lat_band = ANY($3::integer[])"
        "     AND longitude BETWEEN $4 AND $5 AND latitude BETWEEN $6 AND $7"
        "     AND ($8::text[] IS NULL OR pickup_categories && $8::text[])"
        "     AND ($9::text IS NULL OR store_category = $9)"
        f"    AND {HAVERSINE_SQL} <= $10"
        "   ORDER BY distance_m, id LIMIT $11) near"
        " JOIN locations l ON l.id = near.id ORDER BY near.distance_m, near.id",
        lat, lon, box.bands(), box.min_lon, box.max_lon, box.min_lat, box.max_lat,
        pickup, store, radius_m, limit,
    )
    return [_center(r) for r in rows]


async def nearest_full_scan(
    db: Executor, lat: float, lon: float, radius_m: float, limit: int
) -> list[Center]:
    """The same answer as ``nearest`` (no filters) by computing every distance: the
    benchmark's baseline and the tests' oracle. Never use it to serve requests."""
    rows = await db.fetch(
        f"SELECT * FROM (SELECT {_COLUMNS}, {HAVERSINE_SQL} AS distance_m FROM locations) d"
        " WHERE distance_m <= $3 ORDER BY distance_m, id LIMIT $4",
        lat, lon, radius_m, limit,
    )
    return [_center(r) for r in rows]


async def get_center(
    db: Executor, center_id: int, origin: tuple[float, float] | None = None
) -> Center | None:
    """The point ``center_id`` (with its distance from ``origin`` when given), or None."""
    if origin is None:
        row = await db.fetchrow(f"SELECT {_COLUMNS} FROM locations WHERE id = $1", center_id)
    else:
        check_origin(*origin)
        row = await db.fetchrow(
            f"SELECT {_COLUMNS}, {HAVERSINE_SQL} AS distance_m FROM locations WHERE id = $3",
            origin[0], origin[1], center_id,
        )
    return None if row is None else _center(row)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(
    db: Executor,
    query: str,
    *,
    origin: tuple[float, float] | None = None,
    radius_m: float | None = None,
    limit: int = 15,
) -> list[Center]:
    """Points whose name or address contains every word of ``query``.

    With ``origin``: nearest first (within ``radius_m`` when given); otherwise names that start
    with the query first, then shorter names.
    """
    words = query.split()[:5]
    if not words or not 1 <= limit <= MAX_LIMIT:
        return []
    args: list[Any] = []
    if origin is not None:
        check_origin(*origin)
        args += [origin[0], origin[1]]
    conditions = []
    for word in words:
        args.append(f"%{_like_escape(word)}%")
        n = len(args)
        conditions.append(
            f"(name ILIKE ${n} OR road_address ILIKE ${n} OR lot_address ILIKE ${n})"
        )
    distance = f", {HAVERSINE_SQL} AS distance_m" if origin is not None else ""
    sql = f"SELECT * FROM (SELECT {_COLUMNS}{distance} FROM locations WHERE {' AND '.join(conditions)}) m"
    if origin is not None:
        if radius_m is not None:
            args.append(radius_m)
            sql += f" WHERE distance_m <= ${len(args)}"
        sql += " ORDER BY distance_m, id"
    else:
        args.append(_like_escape(query.strip()) + "%")
        sql += f" ORDER BY (name LIKE ${len(args)}) DESC, length(name), name, id"
    args.append(limit)
    sql += f" LIMIT ${len(args)}"
    return [_center(r) for r in await db.fetch(sql, *args)]


async def suggest(db: Executor, prefix: str, *, limit: int = 10) -> list[Center]:
    """Autocomplete: names starting with ``prefix`` (index range scan), then, to fill up,
    names or addresses containing it."""
    text = prefix.strip()
    if not text or not 1 <= limit <= MAX_LIMIT:
        return []
    escaped = _like_escape(text)
    starts = await db.fetch(
        f"SELECT {_COLUMNS} FROM locations WHERE name LIKE $1 ORDER BY name, id LIMIT $2",
        escaped + "%", limit,
    )
    found = [_center(r) for r in starts]
    if len(found) < limit:
        seen = [c.id for c in found]
        more = await db.fetch(
            f"SELECT {_COLUMNS} FROM locations"
            " WHERE (name ILIKE $1 OR road_address ILIKE $1) AND NOT (id = ANY($2::bigint[]))"
            " ORDER BY length(name), name, id LIMIT $3",
            f"%{escaped}%", seen, limit - len(found),
        )
        found += [_center(r) for r in more]
    return found


async def count_locations(db: Executor, source: str | None = None) -> int:
    """How many points are stored (of one dataset when ``source`` is given)."""
    value = await db.fetchval(
        "SELECT count(*) FROM locations WHERE $1::text IS NULL OR source = $1", source
    )
    return int(value or 0)
