"""Locations, news, the operations endpoints, and the contract's own completeness."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.app import ROUTES
from gateway.openapi import served, shape, undocumented
from gateway.openapi_catalogue import CATALOGUE
from tests.gateway.contract.endpoints import (
    API_MD,
    COVERED,
    NONE,
    STR_OR_NONE,
    contract,
    has,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


# ---- locations and info -------------------------------------------------------------------------

CENTER = {"id": int, "name": str, "source": str, "road_address": STR_OR_NONE,
          "latitude": float, "longitude": float, "distance_km": (float, int, NONE),
          "distance_text": STR_OR_NONE, "store_category": str, "pickup_categories": list,
          "is_open": (bool, NONE), "is_holiday": (bool, NONE), "start_time": STR_OR_NONE,
          "end_time": STR_OR_NONE, "phone": STR_OR_NONE, "place_url": STR_OR_NONE,
          "kakao_place_id": STR_OR_NONE}
PLACE = {"place_name": str, "address": str, "latitude": float, "longitude": float,
         "place_url": STR_OR_NONE}


@contract(("GET", "/api/v1/locations/centers"), ("GET", "/api/v1/locations/centers/{center_id}"))
async def test_centers(user: httpx.AsyncClient) -> None:
    centers = (await user.get("/api/v1/locations/centers",
                              params={"lat": 37.5665, "lon": 126.978, "radius": 2000})).json()
    assert isinstance(centers, list) and centers
    for c in centers:
        has(c, **CENTER)
    detail = (await user.get(f"/api/v1/locations/centers/{centers[0]['id']}")).json()
    has(detail, **CENTER)


@contract(("GET", "/api/v1/locations/search"), ("GET", "/api/v1/locations/suggest"))
async def test_search_and_suggest(user: httpx.AsyncClient) -> None:
    # search answers the centers' list items; suggest answers places
    for path, q, fields in (("/api/v1/locations/search", "주민센터", CENTER),
                           ("/api/v1/locations/suggest", "리필", PLACE)):
        places = (await user.get(path, params={"q": q})).json()
        assert isinstance(places, list) and places
        for p in places:
            has(p, **fields)


@contract(("GET", "/api/v1/info/news"))
async def test_news(user: httpx.AsyncClient) -> None:
    page = has((await user.get("/api/v1/info/news", params={"limit": 5})).json(),
               articles=list, next_cursor=STR_OR_NONE, has_more=bool, meta=dict)
    assert len(page["articles"]) == 5
    for a in page["articles"]:
        has(a, id=str, title=str, url=str, snippet=str, source=str, source_name=str,
            published_at=str, thumbnail_url=STR_OR_NONE, category=str,
            source_icon_url=STR_OR_NONE, video_url=STR_OR_NONE, keywords=(list, NONE),
            ai_tag=STR_OR_NONE)


# ---- operations and the document ----------------------------------------------------------------


@contract(("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/docs"))
async def test_operations(browser: httpx.AsyncClient) -> None:
    assert (await browser.get("/health")).json() == {"status": "ok"}
    ready = await browser.get("/ready")
    assert (ready.status_code in (200, 503) and "status" in ready.json()) or "code" in ready.json()
    assert (await browser.get("/metrics")).headers["content-type"].startswith("text/plain")
    doc = (await browser.get("/docs")).json()
    assert doc["openapi"].startswith("3.") and doc["paths"]
    ui = await browser.get("/docs/ui")
    assert ui.status_code == 200 and "<script" in ui.text and "https://" not in ui.text


async def test_docs_list_exactly_the_served_routes(browser: httpx.AsyncClient) -> None:
    doc = (await browser.get("/docs")).json()
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    serving = set(served(ROUTES))
    api = {op for op in serving if op[1].startswith("/api/v1/")}
    assert {op for op in documented if op[1].startswith("/api/v1/")} == api
    assert documented <= serving
    # the only /api/v1 routes left out are the ones declared outside the schema (admin API)
    hidden = set(served(ROUTES, hidden=True)) - serving
    assert all(path.startswith("/api/v1/admin/") for _, path in hidden if
               path.startswith("/api/v1/")), hidden
    assert undocumented(ROUTES) == [], (
        "served routes missing from gateway/openapi_catalogue.CATALOGUE")
    # every path parameter of the document is declared on its operation
    for path, ops in doc["paths"].items():
        names = {part[1:-1] for part in path.split("/") if part.startswith("{")}
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, declared)


def test_every_api_md_endpoint_has_a_contract_test_and_a_catalogue_entry() -> None:
    # The other modules' ``contract`` marks register what they cover when they are imported.
    from tests.gateway.contract import test_accounts, test_jobs  # noqa: F401

    assert COVERED == API_MD
    catalogue = {(m, shape(p)) for m, p in CATALOGUE}
    assert {(m, shape(p)) for m, p in API_MD} <= catalogue


def test_api_md_is_where_we_think(request: pytest.FixtureRequest) -> None:
    """When the shared contract file is reachable, our list matches its endpoints."""
    api_md = Path(request.config.rootpath).parent / "shared" / "API.md"
    if not api_md.exists():
        pytest.skip("../shared/API.md is not next to the repository")
    text = api_md.read_text(encoding="utf-8")
    for method, path in API_MD:
        if path.startswith("/api/v1/"):
            literal = path.removeprefix("/api/v1").split("{")[0].rstrip("/")
            assert literal in text, (method, path)
