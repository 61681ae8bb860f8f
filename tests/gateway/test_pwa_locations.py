"""The Eco² PWA's map screen against the real app and the shipped samples: its filters, its
``source`` values and its list items, with the query values its ``MapService`` sends."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from infra.gateway_app import create_gateway
from infra.settings import Settings
from readmodels.locations_categories import PWA_PICKUP_CATEGORIES, PWA_STORE_CATEGORIES
from tests.conftest import DATABASE_URL
from tests.gateway.conftest import FAST
from tests.gateway.helpers import asgi_client
from tests.gateway.test_locations_api import CENTER_KEYS, Api, auth_headers, sample_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

# What the PWA's map sends: its position, a radius and (optionally) one filter.
SEOUL = {"lat": 37.5665, "lon": 126.978, "radius": 50_000}
# The samples: public bins (clothes, batteries/lamps, medicine), recycling centres and
# zero-waste shops — so these filters must find something.
FOUND_BY_STORE = {"public_dropbox", "refill_zero", "upcycle_recycle"}
FOUND_BY_PICKUP = {"textile", "electronics", "general", "paper", "plastic", "colored_pet"}


@pytest.fixture(scope="module")
def samples() -> Iterator[str]:
    with sample_schema() as schema:
        yield schema


@pytest.fixture
async def api(settings: Settings, samples: str) -> AsyncIterator[Api]:
    s = settings.with_(database_url=DATABASE_URL, db_schema=samples)
    async with asgi_client(create_gateway(s, live=FAST)) as client:
        yield Api(client, auth_headers(s), s)


def check_item(item: dict[str, object]) -> None:
    assert set(item) >= CENTER_KEYS
    assert item["source"] in ("keco", "zerowaste", "kakao")
    assert item["store_category"] in PWA_STORE_CATEGORIES
    pickups = item["pickup_categories"]
    assert isinstance(pickups, list) and set(pickups) <= set(PWA_PICKUP_CATEGORIES)
    assert len(pickups) == len(set(pickups))


@pytest.mark.parametrize("store_category", PWA_STORE_CATEGORIES)
async def test_store_category_filter(api: Api, store_category: str) -> None:
    r = await api.get("/locations/centers", **SEOUL, store_category=store_category)
    assert r.status_code == 200, r.text
    items = r.json()
    for item in items:
        check_item(item)
        assert item["store_category"] == store_category
    assert bool(items) == (store_category in FOUND_BY_STORE)


@pytest.mark.parametrize("pickup_category", PWA_PICKUP_CATEGORIES)
async def test_pickup_category_filter(api: Api, pickup_category: str) -> None:
    r = await api.get("/locations/centers", **SEOUL, pickup_category=pickup_category)
    assert r.status_code == 200, r.text
    items = r.json()
    # coloured PET goes out with the plastics: the points taking plastics take it
    shown = "plastic" if pickup_category == "colored_pet" else pickup_category
    for item in items:
        check_item(item)
        assert shown in item["pickup_categories"]
    if pickup_category in FOUND_BY_PICKUP:
        assert items, pickup_category


async def test_sources_and_keco_rows(api: Api) -> None:
    items = (await api.get("/locations/centers", **SEOUL, limit=200)).json()
    assert {i["source"] for i in items} == {"keco", "zerowaste"}
    bins = [i for i in items if i["dataset"] in ("clothing_bins", "battery_lamp_bins",
                                                 "medicine_bins")]
    assert bins and all(b["source"] == "keco" and b["store_category"] == "public_dropbox"
                        for b in bins)
    for b in bins:  # the PWA's keco card reads these three (null when the data has none)
        assert {"is_holiday", "start_time", "end_time"} <= set(b)
    clothes = next(b for b in bins if b["dataset"] == "clothing_bins")
    assert clothes["pickup_categories"] == ["textile"] and clothes["pickup_labels"] == ["의류및원단"]
    shops = [i for i in items if i["source"] == "zerowaste"]
    assert shops and all(s["store_category"] == "refill_zero" for s in shops)


async def test_our_page_keeps_korean_labels(api: Api) -> None:
    items = (await api.get("/locations/centers", **SEOUL, pickup_category="폐건전지")).json()
    assert items and all("전지" in i["pickup_labels"] for i in items)
    assert all(i["store_label"] for i in items)


async def test_search_returns_the_centers_list_items(api: Api) -> None:
    # MapService.searchLocations: `GET /locations/search?q=...&radius=...`
    r = await api.get("/locations/search", q="재활용센터", radius=5000)
    assert r.status_code == 200, r.text
    found = r.json()
    assert found
    for item in found:
        check_item(item)
        assert isinstance(item["id"], int) and item["name"]
        detail = (await api.get(f"/locations/centers/{item['id']}")).json()
        assert item == detail | {"is_open": item["is_open"]}
    near = (await api.get("/locations/search", q="재활용센터", radius=5000,
                          lat=SEOUL["lat"], lon=SEOUL["lon"])).json()
    assert near and all(i["distance_text"] and i["distance_km"] <= 5 for i in near)
