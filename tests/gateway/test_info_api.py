"""GET /api/v1/info/news: the client's page shape, cursor pagination, categories, 422s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from gateway.app import create_app
from infra.settings import Settings
from tests.conftest import DATABASE_URL
from tests.gateway.conftest import FAST
from tests.gateway.helpers import asgi_client
from tests.gateway.test_locations_api import auth_headers, sample_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ARTICLE_KEYS = {"id", "title", "url", "snippet", "source", "source_name", "published_at",
                "thumbnail_url"}


@pytest.fixture(scope="module")
def samples() -> Iterator[str]:
    with sample_schema() as schema:
        yield schema


@pytest.fixture
async def client(settings: Settings, samples: str) -> AsyncIterator[httpx.AsyncClient]:
    s = settings.with_(database_url=DATABASE_URL, db_schema=samples)
    async with asgi_client(create_app(s, live=FAST)) as c:
        c.headers.update(auth_headers(s))
        yield c


async def test_page_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/info/news")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) >= {"articles", "next_cursor", "has_more", "meta"}
    assert len(body["articles"]) == 20  # the default page
    for article in body["articles"]:
        assert set(article) >= ARTICLE_KEYS
        assert article["url"].startswith("https://") and article["sample"] is True
    assert body["has_more"] is True and isinstance(body["next_cursor"], str)
    meta = body["meta"]
    assert meta["category"] == "all" and meta["total"] == 32
    assert [c["key"] for c in meta["categories"]] == ["recycling", "policy", "climate",
                                                      "lifestyle"]
    assert meta["sample"] is True
    dates = [a["published_at"] for a in body["articles"]]
    assert dates == sorted(dates, reverse=True) and dates[0].endswith("+09:00")


async def test_cursor_walks_every_article_once(client: httpx.AsyncClient) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        body = (await client.get("/api/v1/info/news", params=params)).json()
        seen += [a["id"] for a in body["articles"]]
        if not body["has_more"]:
            assert body["next_cursor"] is None
            break
        cursor = body["next_cursor"]
    assert len(seen) == len(set(seen)) == 32


async def test_categories(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/info/news", params={"category": "policy",
                                                          "limit": 50})).json()
    assert len(body["articles"]) == 8 and body["has_more"] is False
    assert {a["category"] for a in body["articles"]} == {"policy"}
    assert body["meta"]["category"] == "policy" and body["meta"]["total"] == 8
    korean = (await client.get("/api/v1/info/news", params={"category": "정책·제도",
                                                            "limit": 50})).json()
    assert [a["id"] for a in korean["articles"]] == [a["id"] for a in body["articles"]]
    everything = (await client.get("/api/v1/info/news", params={"category": "all"})).json()
    assert everything["meta"]["total"] == 32


@pytest.mark.parametrize(
    ("params", "field"),
    [({"category": "sports"}, "category"), ({"cursor": "not-a-cursor"}, "cursor"),
     ({"limit": 0}, "limit"), ({"limit": 51}, "limit"), ({"limit": "x"}, "limit")],
)
async def test_invalid_parameters(
    client: httpx.AsyncClient, params: dict[str, object], field: str
) -> None:
    r = await client.get("/api/v1/info/news", params=params)
    assert r.status_code == 422
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_datasets_say_which_are_samples_and_their_reference_dates(
    client: httpx.AsyncClient,
) -> None:
    r = await client.get("/api/v1/info/datasets")
    assert r.status_code == 200, r.text
    datasets = {d["key"]: d for d in r.json()["datasets"]}
    assert datasets["knowledge_base"]["sample"] is False
    assert datasets["knowledge_base"]["reference_date"]
    for key in ("collection_points", "places", "bulk_waste_fees", "recyclable_prices"):
        assert datasets[key]["sample"] is True, key
    assert datasets["recyclable_prices"]["reference_date"] == "2026-09"
