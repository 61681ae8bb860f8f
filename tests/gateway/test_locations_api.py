"""/api/v1/locations/*: auth, validation (422 naming the parameter), shapes, ordering, filters,
detail, search and suggest — through the real app on Redis and Postgres with the samples."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from infra.gateway_app import create_gateway
from infra.importers.samples import load_samples
from infra.settings import Settings
from readmodels.db import create_pool, quote_ident
from readmodels.locations_geo import haversine_m
from readmodels.migrate import migrate
from tests.conftest import DATABASE_URL
from tests.gateway.conftest import FAST
from tests.gateway.helpers import asgi_client
from tests.readmodels.pg import new_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

CITY_HALL = {"lat": 37.5665, "lon": 126.9780}
CENTER_KEYS = {"id", "name", "source", "road_address", "latitude", "longitude", "distance_km",
               "distance_text", "store_category", "pickup_categories", "is_open", "is_holiday",
               "start_time", "end_time", "phone", "place_url", "kakao_place_id"}
DETAIL_KEYS = {"id", "name", "source", "road_address", "lot_address", "latitude", "longitude",
               "store_category", "pickup_categories", "phone", "place_url", "kakao_place_id",
               "collection_items", "introduction"}
PLACE_KEYS = {"place_name", "address", "latitude", "longitude", "place_url"}


def auth_headers(settings: Settings, user_id: str = "alice") -> dict[str, str]:
    """Credentials for ``user_id``: a JWT when the auth module mints them, else the dev header."""
    try:
        tokens = importlib.import_module("gateway.auth_tokens")
    except ImportError:
        return {"X-User-Id": user_id}
    headers: dict[str, str] = tokens.bearer(settings, user_id)
    return headers


@dataclass
class Api:
    client: httpx.AsyncClient
    headers: dict[str, str]
    settings: Settings

    async def get(self, path: str, **params: object) -> httpx.Response:
        return await self.client.get(f"/api/v1{path}", params=params, headers=self.headers)


@contextmanager
def sample_schema() -> Iterator[str]:
    """A migrated schema holding the shipped samples, dropped afterwards. Built once per
    module (synchronously, on its own loop): loading the samples per test would dominate."""
    schema = new_schema()

    async def create() -> None:
        pool = await create_pool(DATABASE_URL, schema, max_size=2)
        try:
            await migrate(pool)
            await load_samples(pool)
        finally:
            await pool.close()

    async def drop() -> None:
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()

    try:
        asyncio.run(create())
        yield schema
    finally:
        asyncio.run(drop())


@pytest.fixture(scope="module")
def samples() -> Iterator[str]:
    with sample_schema() as schema:
        yield schema


@pytest.fixture
async def api(settings: Settings, samples: str) -> AsyncIterator[Api]:
    s = settings.with_(database_url=DATABASE_URL, db_schema=samples)
    async with asgi_client(create_gateway(s, live=FAST)) as client:
        yield Api(client, auth_headers(s), s)


async def test_every_route_needs_credentials(api: Api) -> None:
    for path in ("/locations/centers?lat=37.5&lon=127", "/locations/centers/1",
                 "/locations/search?q=a", "/locations/suggest?q=a", "/info/news"):
        r = await api.client.get(f"/api/v1{path}")
        assert r.status_code == 401, path
        assert set(r.json()) >= {"detail", "code"}


async def test_centers_nearest_first_with_the_client_shape(api: Api) -> None:
    r = await api.get("/locations/centers", **CITY_HALL, radius=3000)
    assert r.status_code == 200, r.text
    centers = r.json()
    assert 0 < len(centers) <= 100
    for c in centers:
        assert set(c) >= CENTER_KEYS
        assert isinstance(c["id"], int) and isinstance(c["pickup_categories"], list)
        assert c["distance_km"] <= 3.0
        real = haversine_m(CITY_HALL["lat"], CITY_HALL["lon"], c["latitude"], c["longitude"])
        assert c["distance_km"] == pytest.approx(real / 1000, abs=0.001)
        assert c["distance_text"].endswith(("m", "km"))
        assert c["place_url"].startswith("https://")
        assert c["sample"] is True and "샘플" in c["sample_label"]  # visible on the marker
    distances = [c["distance_km"] for c in centers]
    assert distances == sorted(distances)


async def test_centers_filters_limit_and_zoom(api: Api) -> None:
    r = await api.get("/locations/centers", **CITY_HALL, radius=50_000, pickup_category="폐건전지",
                      limit=15)
    assert len(r.json()) == 15 and all("전지" in c["pickup_labels"] for c in r.json())
    assert all("electronics" in c["pickup_categories"] for c in r.json())
    r = await api.get("/locations/centers", **CITY_HALL, radius=50_000,
                      store_category="zero_waste_shop")  # our own key is understood too
    shops = r.json()
    assert shops and all(c["store_category"] == "refill_zero" for c in shops)
    assert all(c["dataset"] == "zero_waste_shops" and c["source"] == "zerowaste" for c in shops)
    assert all(c["start_time"] and c["end_time"] and isinstance(c["is_open"], bool)
               for c in shops)
    r = await api.get("/locations/centers", **CITY_HALL, store_category="unknown")
    assert r.status_code == 200 and r.json() == []
    # no radius: the map level decides (level 3 ≈ 250 m), else 5 km
    small = (await api.get("/locations/centers", **CITY_HALL, zoom=3)).json()
    assert all(c["distance_km"] <= 0.25 for c in small)
    default = (await api.get("/locations/centers", **CITY_HALL)).json()
    assert default and all(c["distance_km"] <= 5 for c in default)


INVALID = [
    ({"lon": 127}, "lat"), ({"lat": 37.5}, "lon"), ({"lat": 91, "lon": 127}, "lat"),
    ({"lat": "abc", "lon": 127}, "lat"), ({"lat": "nan", "lon": 127}, "lat"),
    ({"lat": 37.5, "lon": 127, "radius": 99}, "radius"),
    ({"lat": 37.5, "lon": 127, "radius": 50_001}, "radius"),
    ({"lat": 37.5, "lon": 127, "limit": 0}, "limit"),
    ({"lat": 37.5, "lon": 127, "pickup_category": "a\x00b"}, "pickup_category"),
]


async def test_centers_validation(api: Api) -> None:
    for params, field in INVALID:
        r = await api.get("/locations/centers", **params)
        assert r.status_code == 422, (params, r.text)
        body = r.json()
        assert body["code"] == "validation_error"
        assert field in [e["field"] for e in body["errors"]], (params, body)


async def test_center_detail(api: Api) -> None:
    first = (await api.get("/locations/centers", **CITY_HALL, limit=1)).json()[0]
    r = await api.get(f"/locations/centers/{first['id']}")
    assert r.status_code == 200
    detail = r.json()
    assert set(detail) >= CENTER_KEYS | DETAIL_KEYS and detail["id"] == first["id"]
    assert detail["distance_km"] is None
    with_origin = (await api.get(f"/locations/centers/{first['id']}", **CITY_HALL)).json()
    assert with_origin["distance_km"] == first["distance_km"]
    assert (await api.get("/locations/centers/987654321")).status_code == 404
    assert (await api.get("/locations/centers/99999999999999999999999")).status_code == 404
    assert (await api.get("/locations/centers/abc")).status_code == 404
    r = await api.get(f"/locations/centers/{first['id']}", lat=37.5)
    assert r.status_code == 422


async def test_search_and_suggest(api: Api) -> None:
    r = await api.get("/locations/search", q="재활용센터")
    assert r.status_code == 200
    places = r.json()
    assert places and all(set(p) >= CENTER_KEYS for p in places)
    assert all("재활용센터" in p["name"] or "재활용센터" in (p["road_address"] or "")
               for p in places)
    near = (await api.get("/locations/search", q="주민센터", radius=2000, **CITY_HALL)).json()
    assert near and all(p["distance_km"] <= 2 for p in near)
    assert [p["distance_km"] for p in near] == sorted(p["distance_km"] for p in near)
    assert (await api.get("/locations/search", q="")).status_code == 422
    assert (await api.get("/locations/search")).status_code == 422
    assert (await api.get("/locations/search", q="x" * 101)).status_code == 422

    suggestions = (await api.get("/locations/suggest", q="리필")).json()
    assert suggestions and all(set(s) >= PLACE_KEYS for s in suggestions)
    assert all(s["place_name"].startswith("리필") for s in suggestions)
    assert len(suggestions) <= 10
    assert (await api.get("/locations/suggest", q="없는이름입니다")).json() == []
    assert (await api.get("/locations/suggest", q="  ")).status_code == 422


async def test_without_a_database_the_routes_are_503(settings: Settings) -> None:
    async with asgi_client(create_gateway(settings, live=FAST)) as client:
        r = await client.get("/api/v1/locations/centers", params=CITY_HALL,
                             headers=auth_headers(settings))
        assert r.status_code == 503 and r.json()["code"] == "not_ready"
