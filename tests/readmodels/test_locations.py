"""The locations read model on a real Postgres: nearest against a full-scan oracle, filters,
the index plan, re-imports keeping ids, search, suggest, detail."""

from __future__ import annotations

import random

import asyncpg
import pytest

from readmodels import locations
from readmodels.locations_geo import haversine_m
from readmodels.locations_store import (
    LocationRecord,
    delete_source,
    optimize_locations,
    replace_source,
    upsert_locations,
)

pytestmark = [pytest.mark.postgres]

SEOUL = (37.5665, 126.9780)


def point(i: int, lat: float, lon: float, **kw: object) -> LocationRecord:
    fields: dict[str, object] = {
        "source": "test", "source_key": f"k{i}", "name": f"수거함 {i}", "latitude": lat,
        "longitude": lon, "store_category": "collection_bin", "pickup_categories": ("전지",),
    }
    fields.update(kw)
    return LocationRecord(**fields)  # type: ignore[arg-type]


def random_points(n: int, seed: int = 7) -> list[LocationRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        lat = SEOUL[0] + rng.uniform(-0.3, 0.3)
        lon = SEOUL[1] + rng.uniform(-0.4, 0.4)
        kind = rng.random()
        if kind < 0.6:
            out.append(point(i, lat, lon, pickup_categories=("전지", "조명제품")))
        elif kind < 0.9:
            out.append(point(i, lat, lon, pickup_categories=("의류및원단",)))
        else:
            out.append(point(i, lat, lon, store_category="zero_waste_shop",
                             pickup_categories=("종이팩", "플라스틱류")))
    return out


async def test_nearest_equals_the_full_scan(pool: asyncpg.Pool) -> None:
    await upsert_locations(pool, random_points(4000))
    rng = random.Random(11)
    for _ in range(60):
        lat = SEOUL[0] + rng.uniform(-0.35, 0.35)
        lon = SEOUL[1] + rng.uniform(-0.45, 0.45)
        radius = rng.choice([100, 300, 1000, 5000, 20_000, 50_000])
        limit = rng.choice([1, 5, 20, 100])
        fast = await locations.nearest(pool, lat, lon, radius, None, limit)
        slow = await locations.nearest_full_scan(pool, lat, lon, radius, limit)
        assert [c.id for c in fast] == [c.id for c in slow]
        distances = [c.distance_m for c in fast]
        assert distances == sorted(distances)
        assert all(d is not None and d <= radius for d in distances)
        for c in fast:  # the SQL distance agrees with Python's
            assert c.distance_m == pytest.approx(haversine_m(lat, lon, c.latitude, c.longitude),
                                                 abs=0.01)


async def test_filters_by_what_a_point_takes_and_what_it_is(pool: asyncpg.Pool) -> None:
    await upsert_locations(pool, random_points(1500))
    clothing = await locations.nearest(pool, *SEOUL, 50_000, "헌옷", 30)
    assert len(clothing) == 30
    assert all("의류및원단" in c.pickup_categories for c in clothing)
    batteries = await locations.nearest(pool, *SEOUL, 50_000, "폐건전지", 30)
    assert all("전지" in c.pickup_categories for c in batteries)
    shops = await locations.nearest(pool, *SEOUL, 50_000, limit=10,
                                    store_category="제로웨이스트")
    assert len(shops) == 10 and all(c.store_category == "zero_waste_shop" for c in shops)
    both = await locations.nearest(pool, *SEOUL, 50_000, "종이팩", 10,
                                   store_category="collection_bin")
    assert both == []
    assert await locations.nearest(pool, *SEOUL, 50_000, "없는분류", 10) == []
    # the chat agents' category names: kinds of place as well as what a place takes
    by_kind = await locations.nearest(pool, *SEOUL, 50_000, "zero_waste_shop", 10)
    assert [c.id for c in by_kind] == [c.id for c in shops]
    assert await locations.nearest(pool, *SEOUL, 50_000, "refill_station", 10) == by_kind
    english = await locations.nearest(pool, *SEOUL, 50_000, "battery", 30)
    assert [c.id for c in english] == [c.id for c in batteries]
    clash = await locations.nearest(pool, *SEOUL, 50_000, "zero_waste_shop", 10,
                                    store_category="collection_bin")
    assert clash == []  # kind from category and store_category disagree: nothing matches


async def test_nothing_beyond_the_radius_and_bad_arguments_refused(pool: asyncpg.Pool) -> None:
    await upsert_locations(pool, [point(1, 37.5665, 126.9780), point(2, 37.5765, 126.9780)])
    # the second point is ~1.11 km north
    near = await locations.nearest(pool, 37.5665, 126.9780, 1000, None, 20)
    assert [c.name for c in near] == ["수거함 1"]
    assert len(await locations.nearest(pool, 37.5665, 126.9780, 1200, None, 20)) == 2
    for bad in ({"radius_m": 0}, {"radius_m": 60_000}, {"limit": 0}, {"limit": 500}):
        with pytest.raises(ValueError):
            await locations.nearest(pool, 37.5, 127.0, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await locations.nearest(pool, float("nan"), 127.0)
    with pytest.raises(ValueError):
        await locations.nearest(pool, 91.0, 127.0)


async def test_the_nearest_query_reads_the_band_index(pool: asyncpg.Pool) -> None:
    await upsert_locations(pool, random_points(20_000, seed=3))
    await optimize_locations(pool)
    async with pool.acquire() as conn:
        box = locations.box_around(*SEOUL, 1000)
        rows = await conn.fetch(
            "EXPLAIN SELECT id FROM locations WHERE lat_band = ANY($1::integer[])"
            " AND longitude BETWEEN $2 AND $3 AND latitude BETWEEN $4 AND $5",
            box.bands(), box.min_lon, box.max_lon, box.min_lat, box.max_lat,
        )
    plan = "\n".join(r[0] for r in rows)
    assert "Index Only Scan using locations_band_lon_cover" in plan, plan


async def test_reimport_keeps_ids_and_replace_drops_what_is_gone(pool: asyncpg.Pool) -> None:
    await upsert_locations(pool, [point(1, 37.5, 127.0), point(2, 37.51, 127.0)])
    first = {c.name: c.id for c in await locations.nearest(pool, 37.5, 127.0, 5000)}
    await upsert_locations(pool, [point(1, 37.5, 127.0, name="수거함 1 (이전)")])
    again = await locations.get_center(pool, first["수거함 1"])
    assert again is not None and again.name == "수거함 1 (이전)"
    assert await replace_source(pool, "test", [point(2, 37.51, 127.0)]) == 1
    assert await locations.get_center(pool, first["수거함 1"]) is None
    assert await locations.count_locations(pool, "test") == 1
    assert await delete_source(pool, "test") == 1


async def test_detail_search_and_suggest(pool: asyncpg.Pool) -> None:
    await upsert_locations(pool, [
        point(1, 37.50, 127.03, name="역삼1동주민센터", road_address="서울특별시 강남구 테헤란로 1"),
        point(2, 37.52, 127.04, name="리필상점 역삼점", road_address="서울특별시 강남구 논현로 9",
              store_category="zero_waste_shop"),
        point(3, 37.60, 126.93, name="불광1동주민센터", road_address="서울특별시 은평구 통일로 5"),
        point(4, 37.60, 126.93, name="100%_재활용", road_address=None,
              lot_address="서울특별시 은평구 불광동 1-1"),
    ])
    ids = {c.name: c.id for c in await locations.nearest(pool, 37.55, 127.0, 50_000)}
    detail = await locations.get_center(pool, ids["역삼1동주민센터"], (37.50, 127.03))
    assert detail is not None and detail.distance_m == pytest.approx(0, abs=0.01)
    assert (await locations.get_center(pool, ids["역삼1동주민센터"])).distance_m is None  # type: ignore[union-attr]
    assert await locations.get_center(pool, 999_999) is None

    assert [c.name for c in await locations.search(pool, "역삼")] == [
        "역삼1동주민센터", "리필상점 역삼점"]  # a name starting with the query first
    assert [c.name for c in await locations.search(pool, "강남구 논현로")] == ["리필상점 역삼점"]
    near = await locations.search(pool, "주민센터", origin=(37.60, 126.93))
    assert [c.name for c in near] == ["불광1동주민센터", "역삼1동주민센터"]
    within = await locations.search(pool, "주민센터", origin=(37.60, 126.93), radius_m=1000)
    assert [c.name for c in within] == ["불광1동주민센터"]
    assert await locations.search(pool, "   ") == []
    # LIKE wildcards in the query are literal
    assert [c.name for c in await locations.search(pool, "100%_")] == ["100%_재활용"]
    assert [c.name for c in await locations.search(pool, "%")] == ["100%_재활용"]

    names = [c.name for c in await locations.suggest(pool, "역삼")]
    assert names == ["역삼1동주민센터", "리필상점 역삼점"]  # prefix matches, then contains
    assert [c.name for c in await locations.suggest(pool, "은평구")] == [
        "불광1동주민센터"]  # road address matches fill up
    assert await locations.suggest(pool, "") == []
