"""The chat subagents' locations port over the Postgres read model."""

from __future__ import annotations

import asyncpg
import pytest

from agents.chat.subagents.places import InMemoryLocations, haversine_m
from agents.chat.subagents.places_pg import ReadModelLocations
from infra.importers.samples import load_samples

pytestmark = pytest.mark.postgres

CITY_HALL = (37.5663, 126.9779)


async def test_nearest_battery_bins_from_the_read_model(pool: asyncpg.Pool) -> None:
    await load_samples(pool)
    port = ReadModelLocations(pool)
    places = await port.nearest(*CITY_HALL, radius_m=5000, category="battery", limit=5)
    assert places, "the Seoul sample has battery bins near City Hall"
    distances = [p.distance_m for p in places]
    assert distances == sorted(distances)
    for place in places:
        assert place.distance_m is not None
        assert abs(place.distance_m - haversine_m(*CITY_HALL, place.latitude, place.longitude)) < 5
        assert place.distance_m <= 5000
        assert "전지" in place.pickup_categories  # the read model speaks the datasets' labels
    assert isinstance(InMemoryLocations.from_sample(), InMemoryLocations)  # same port, two twins
