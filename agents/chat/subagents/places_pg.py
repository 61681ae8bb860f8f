"""``LocationsPort`` over the locations read model (Postgres), for the chat subagents."""

from __future__ import annotations

import asyncpg

from agents.chat.subagents.places import Place
from readmodels.locations import Center, nearest


class ReadModelLocations:
    """Nearest drop-off points from ``readmodels.locations`` (indexed, nearest first)."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record]) -> None:
        self.pool = pool

    async def nearest(
        self, lat: float, lon: float, radius_m: int, category: str | None, limit: int
    ) -> list[Place]:
        """Places of ``category`` (None: any) within ``radius_m``, nearest first."""
        centers = await nearest(self.pool, lat, lon, radius_m=radius_m, category=category,
                                limit=limit)
        return [_place(c) for c in centers]


def _place(center: Center) -> Place:
    return Place(
        id=str(center.id),
        name=center.name,
        source=center.source,
        road_address=center.address,
        latitude=center.latitude,
        longitude=center.longitude,
        store_category=center.store_category,
        pickup_categories=list(center.pickup_categories),
        phone=center.phone,
        place_url=center.place_url,
        start_time=center.start_time,
        end_time=center.end_time,
        distance_m=center.distance_m,
        sample=center.sample,
    )
