"""GET /api/v1/info/news: the client's page shape, cursor pagination, categories, 422s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from infra.gateway_app import create_gateway
from infra.settings import Settings
from readmodels import news
from readmodels.db import create_pool
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
    async with asgi_client(create_gateway(s, live=FAST)) as c:
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
    assert meta["category"] == "all" and meta["total"] == 40
    assert [c["key"] for c in meta["categories"]] == ["recycling", "policy", "climate",
                                                      "lifestyle", "energy", "ai"]
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
    assert len(seen) == len(set(seen)) == 40


async def test_categories(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/info/news", params={"category": "policy",
                                                          "limit": 50})).json()
    assert len(body["articles"]) == 8 and body["has_more"] is False
    assert {a["topic"] for a in body["articles"]} == {"policy"}
    assert {a["category"] for a in body["articles"]} == {"environment"}
    assert body["meta"]["category"] == "policy" and body["meta"]["total"] == 8
    korean = (await client.get("/api/v1/info/news", params={"category": "정책·제도",
                                                            "limit": 50})).json()
    assert [a["id"] for a in korean["articles"]] == [a["id"] for a in body["articles"]]
    everything = (await client.get("/api/v1/info/news", params={"category": "all"})).json()
    assert everything["meta"]["total"] == 40


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


# -- the Eco² PWA's news screen: its tabs and its article type, verbatim ------------------------

PWA_ARTICLE_KEYS = {"id", "title", "url", "snippet", "source", "source_name", "published_at",
                    "thumbnail_url", "category", "source_icon_url", "video_url", "keywords",
                    "ai_tag"}


@pytest.mark.parametrize("tab", ["all", "environment", "energy", "ai"])
async def test_pwa_tabs(client: httpx.AsyncClient, tab: str) -> None:
    # The PWA's NewsFeed asks `GET /info/news?category=<tab>&limit=10` for each of its tabs.
    r = await client.get("/api/v1/info/news", params={"category": tab, "limit": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body["meta"]["total_cached"], int)
    assert isinstance(body["meta"]["cache_expires_in"], int)
    for article in body["articles"]:
        assert set(article) >= PWA_ARTICLE_KEYS
        assert article["source"] in ("naver", "newsdata")
        assert article["category"] in ("environment", "energy", "ai")
        if tab != "all":
            assert article["category"] == tab
        assert article["keywords"] is None or isinstance(article["keywords"], list)
    # the shipped samples: 32 environment articles (4 topics × 8), 4 on energy, 4 on AI
    expected = {"all": 40, "environment": 32, "energy": 4, "ai": 4}[tab]
    assert body["meta"]["total_cached"] == expected
    assert len(body["articles"]) == min(10, expected)
    assert body["has_more"] is (expected > 10)


async def test_pwa_tabs_show_energy_and_ai_articles(
    client: httpx.AsyncClient, samples: str
) -> None:
    articles = [
        news.Article(id=f"n-pwa-{c}", title=f"{c} 기사", url=f"https://news.naver.com/{c}",
                     snippet="요약", source="news.naver.com", source_name="네이버 뉴스",
                     category=c, published_at=datetime(2030, 1, 1, tzinfo=UTC))
        for c in ("energy", "ai")
    ]
    pool = await create_pool(DATABASE_URL, samples)
    try:
        await news.upsert_articles(pool, articles)
        for tab in ("energy", "ai"):
            body = (await client.get("/api/v1/info/news", params={"category": tab})).json()
            assert body["articles"][0]["id"] == f"n-pwa-{tab}"  # the newest
            assert body["articles"][0]["source"] == "naver"
            assert {a["category"] for a in body["articles"]} == {tab}
            assert len(body["articles"]) == 5
        environment = (await client.get("/api/v1/info/news",
                                        params={"category": "environment", "limit": 50})).json()
        assert len(environment["articles"]) == 32  # not the energy or AI ones
    finally:
        await pool.execute("DELETE FROM news_articles WHERE id LIKE 'n-pwa-%'")
        await pool.close()


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
