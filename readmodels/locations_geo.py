"""Distances and the bounding boxes the nearest query scans (plain math, no I/O).

Distances are great-circle (haversine) on a sphere of the mean Earth radius: within 50 km the
error against the ellipsoid is under 0.5 %, far below what a map pin needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone

EARTH_RADIUS_M = 6_371_008.8
METERS_PER_DEGREE = EARTH_RADIUS_M * math.pi / 180  # along a meridian
BAND_DEGREES = 0.01  # lat_band = floor(latitude * 100), as in migration 0020
KST = timezone(timedelta(hours=9))

# The same formula in SQL ($1 = latitude, $2 = longitude of the origin); least() guards
# asin against rounding just above 1 for antipodal points.
HAVERSINE_SQL = (
    f"(2 * {EARTH_RADIUS_M} * asin(least(1.0, sqrt("
    "power(sin(radians(latitude - $1) / 2), 2)"
    " + cos(radians($1)) * cos(radians(latitude)) * power(sin(radians(longitude - $2) / 2), 2)"
    "))))"
)


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class Box:
    """A latitude/longitude box containing every point within ``radius_m`` of a centre."""

    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float

    def bands(self) -> list[int]:
        """The ``lat_band`` values the box overlaps."""
        first = math.floor(self.min_lat / BAND_DEGREES)
        last = math.floor(self.max_lat / BAND_DEGREES)
        return list(range(first, last + 1))


def box_around(lat: float, lon: float, radius_m: float) -> Box:
    """The smallest lat/lon-aligned box around the circle (slightly padded for rounding).

    Near the poles, or when the circle would cross the antimeridian, the box spans every
    longitude: correct, just not selective (Korea is nowhere near either).
    """
    dlat = radius_m / METERS_PER_DEGREE * 1.001
    min_lat, max_lat = max(-90.0, lat - dlat), min(90.0, lat + dlat)
    widest = max(abs(min_lat), abs(max_lat))
    cos_lat = math.cos(math.radians(widest))
    if cos_lat < 1e-6:
        return Box(min_lat, max_lat, -180.0, 180.0)
    dlon = dlat / cos_lat
    if dlon >= 180 or lon - dlon < -180 or lon + dlon > 180:
        return Box(min_lat, max_lat, -180.0, 180.0)
    return Box(min_lat, max_lat, lon - dlon, lon + dlon)


def distance_text(meters: float) -> str:
    """How the client shows a distance: '350m', '1.2km', '12km'."""
    if meters < 1000:
        return f"{round(meters)}m"
    km = meters / 1000
    return f"{km:.1f}km" if km < 10 else f"{round(km)}km"


def parse_hhmm(value: str | None) -> time | None:
    """'09:30' → time(9, 30); '24:00' → time.max; anything else → None."""
    if not value:
        return None
    hours, sep, minutes = value.strip().partition(":")
    if not sep or not hours.isdigit() or not minutes.isdigit():
        return None
    h, m = int(hours), int(minutes)
    if (h, m) == (24, 0):
        return time.max
    if 0 <= h < 24 and 0 <= m < 60:
        return time(h, m)
    return None


def is_open_at(start: str | None, end: str | None, at: datetime) -> bool | None:
    """Whether opening hours ``start``–``end`` (Korean local time) include ``at``; None when
    the hours are unknown. Hours past midnight (18:00–02:00) are handled."""
    opens, closes = parse_hhmm(start), parse_hhmm(end)
    if opens is None or closes is None:
        return None
    now = at.astimezone(KST).time().replace(tzinfo=None)
    if closes == time.max:
        return now >= opens
    if opens <= closes:
        return opens <= now < closes
    return now >= opens or now < closes
