"""Contract tests: every endpoint of API.md answers with the shape the Eco² PWA relies on, and
``/docs`` lists exactly the routes the app serves under /api/v1.

One real gateway (uvicorn on a loopback port) serves the whole module, on Redis and on a
Postgres schema holding the shipped samples; the client signs in through the dev provider
like a browser. A test whose endpoint is not served yet is an xfail (strict, naming the
route): once the route lands the marker lifts itself and the test must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
import redis.asyncio as aioredis
from httpx_sse import aconnect_sse
from prometheus_client import CollectorRegistry

import schemas
from eventstore.keys import Layout
from eventstore.store import ANY, EventStore
from gateway.app import ROUTES
from gateway.openapi import served, shape, undocumented
from gateway.openapi_catalogue import CATALOGUE
from infra.gateway_app import create_gateway
from infra.settings import Settings
from projections.builtin import select
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.runner import ProjectorService
from projections.snapshot import run_snapshot_tail
from projections.worker import ProjectorOptions
from readmodels.db import create_pool
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.gateway.conftest import FAST
from tests.gateway.helpers import PNG, ServerThread, append, full_scan
from tests.gateway.test_locations_api import auth_headers, sample_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ORIGIN = "http://localhost:5173"
NONE = type(None)
STR_OR_NONE = (str, NONE)

# Every endpoint of API.md (the contract), as (method, path template).
API_MD: frozenset[tuple[str, str]] = frozenset({
    ("GET", "/api/v1/auth/{provider}"), ("GET", "/api/v1/auth/{provider}/callback"),
    ("POST", "/api/v1/auth/refresh"), ("POST", "/api/v1/auth/logout"),
    ("GET", "/api/v1/users/me"), ("PATCH", "/api/v1/users/me"), ("DELETE", "/api/v1/users/me"),
    ("GET", "/api/v1/users/me/characters"),
    ("GET", "/api/v1/users/me/characters/{character_name}/ownership"),
    ("GET", "/api/v1/character/catalog"),
    ("POST", "/api/v1/images/{channel}"),
    ("POST", "/api/v1/scan"), ("GET", "/api/v1/scan/{job_id}/events"),
    ("GET", "/api/v1/scan/{job_id}/result"), ("GET", "/api/v1/scan/categories"),
    ("GET", "/api/v1/chat"), ("POST", "/api/v1/chat"), ("GET", "/api/v1/chat/{chat_id}"),
    ("PATCH", "/api/v1/chat/{chat_id}"), ("DELETE", "/api/v1/chat/{chat_id}"),
    ("POST", "/api/v1/chat/{chat_id}/messages"), ("POST", "/api/v1/chat/{job_id}/input"),
    ("GET", "/api/v1/chat/{job_id}/events"),
    ("GET", "/api/v1/locations/centers"), ("GET", "/api/v1/locations/centers/{center_id}"),
    ("GET", "/api/v1/locations/search"), ("GET", "/api/v1/locations/suggest"),
    ("GET", "/api/v1/info/news"),
    # operations (ours): health, readiness, metrics, this document
    ("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("GET", "/docs"),
})
SERVED = {(method, shape(path)) for method, path in served(ROUTES)}
COVERED: set[tuple[str, str]] = set()


def contract(*endpoints: tuple[str, str]) -> Callable[[Any], Any]:
    """Register the endpoints a test covers; xfail (strict) while any is not served."""
    unknown = [e for e in endpoints if e not in API_MD]
    assert not unknown, f"not API.md endpoints: {unknown}"
    COVERED.update(endpoints)
    missing = [f"{m} {p}" for m, p in endpoints if (m, shape(p)) not in SERVED]
    return pytest.mark.xfail(
        bool(missing), reason=f"not served yet: {', '.join(missing)}", strict=True
    )


def has(value: Any, **fields: type | tuple[type, ...]) -> dict[str, Any]:
    """Assert ``value`` is an object with these fields of these types (extras are fine)."""
    assert isinstance(value, dict), value
    for name, kinds in fields.items():
        assert name in value, f"missing {name!r} in {value}"
        assert isinstance(value[name], kinds), f"{name}={value[name]!r} is not {kinds}"
    return value


# ---- one gateway for the module ---------------------------------------------------------------


@dataclass
class Gateway:
    url: str
    settings: Settings
    store: EventStore
    redis: aioredis.Redis


@pytest.fixture(scope="module")
def module_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    with sample_schema() as schema:
        yield Settings(
            redis_url=REDIS_URL, namespace=namespace, shards=4,
            database_url=DATABASE_URL, db_schema=schema,
            data_dir=tmp_path_factory.mktemp("contract"),
            secret_key="contract-secret-0123456789", upload_max_bytes=4096,
            image_hosts=("images.example.org",),
        )
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"*{namespace}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture(scope="module")
def server(module_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_gateway(module_settings, live=FAST)) as running:
        yield running


@pytest.fixture
async def gw(server: ServerThread, module_settings: Settings) -> AsyncIterator[Gateway]:
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    layout = Layout(module_settings.namespace, module_settings.shards)
    try:
        yield Gateway(server.url, module_settings, EventStore(client, layout, schemas.registry),
                      client)
    finally:
        await client.aclose()


@pytest.fixture
async def browser(gw: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials (cookies are kept, like a browser)."""
    async with httpx.AsyncClient(base_url=gw.url, timeout=15) as client:
        yield client


async def dev_login(client: httpx.AsyncClient, nickname: str) -> httpx.Response:
    """Sign in through the dev provider like the PWA in a browser; the callback's response."""
    start = await client.get("/api/v1/auth/kakao", headers={"X-Frontend-Origin": ORIGIN})
    assert start.status_code == 200, start.text
    data = start.json()["data"]
    page = urlsplit(data["authorization_url"])
    assert (await client.get(f"{page.path}?{page.query}")).status_code == 200
    form = await client.post("/api/v1/auth/dev/authorize",
                             data={"state": data["state"], "nickname": nickname})
    assert form.status_code == 303, form.text
    return await client.get(form.headers["location"])


@pytest.fixture
async def user(browser: httpx.AsyncClient, gw: Gateway) -> httpx.AsyncClient:
    """A signed-in browser (a fresh user per test)."""
    if ("GET", "/api/v1/auth/{}") not in SERVED:  # before the auth routes land
        browser.headers.update(auth_headers(gw.settings, f"u{uuid.uuid4().hex[:8]}"))
        return browser
    callback = await dev_login(browser, f"u{uuid.uuid4().hex[:8]}")
    assert callback.status_code == 302 and "s_access" in browser.cookies, callback.headers
    return browser


# ---- auth ---------------------------------------------------------------------------------------


@contract(("GET", "/api/v1/auth/{provider}"), ("GET", "/api/v1/auth/{provider}/callback"))
async def test_login_start_and_callback(browser: httpx.AsyncClient) -> None:
    start = await browser.get("/api/v1/auth/google", params={"redirect_uri": "x"},
                              headers={"X-Frontend-Origin": ORIGIN})
    body = has(start.json(), success=bool, data=dict)
    assert body["success"] is True
    has(body["data"], provider=str, state=str, authorization_url=str, expires_at=str)
    assert body["data"]["authorization_url"].startswith(("http://", "https://"))
    callback = await dev_login(browser, "계약테스트")
    assert callback.status_code == 302
    assert callback.headers["location"] == f"{ORIGIN}/#/home"
    cookies = " ".join(callback.headers.get_list("set-cookie")).lower()
    assert "s_access=" in cookies and "s_refresh=" in cookies
    assert "httponly" in cookies and "samesite=lax" in cookies
    failed = await browser.get("/api/v1/auth/kakao/callback", params={"code": "x", "state": "y"})
    assert failed.status_code == 302 and failed.headers["location"].endswith("/#/login")


@contract(("POST", "/api/v1/auth/refresh"))
async def test_refresh(user: httpx.AsyncClient, gw: Gateway) -> None:
    old = user.cookies["s_access"]
    r = await user.post("/api/v1/auth/refresh")
    assert r.status_code == 201, r.text
    assert "s_access=" in " ".join(r.headers.get_list("set-cookie"))
    assert user.cookies["s_access"] != old
    async with httpx.AsyncClient(base_url=gw.url) as anonymous:
        assert not (await anonymous.post("/api/v1/auth/refresh")).is_success
    async with httpx.AsyncClient(base_url=gw.url, cookies={"s_refresh": "nonsense"}) as forged:
        assert not (await forged.post("/api/v1/auth/refresh")).is_success


@contract(("POST", "/api/v1/auth/logout"))
async def test_logout(user: httpx.AsyncClient, gw: Gateway) -> None:
    access = user.cookies["s_access"]
    r = await user.post("/api/v1/auth/logout")
    assert r.status_code == 200
    body = has(r.json(), success=bool, data=dict)
    has(body["data"], message=str)
    async with httpx.AsyncClient(base_url=gw.url) as other:
        after = await other.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})
        assert after.status_code == 403  # revoked: the client logs out


# ---- users and characters -----------------------------------------------------------------------

PROFILE = {"username": str, "nickname": STR_OR_NONE, "display_name": STR_OR_NONE,
           "phone_number": STR_OR_NONE, "provider": STR_OR_NONE, "last_login_at": STR_OR_NONE}


@contract(("GET", "/api/v1/users/me"), ("PATCH", "/api/v1/users/me"),
          ("DELETE", "/api/v1/users/me"))
async def test_users_me(user: httpx.AsyncClient, gw: Gateway) -> None:
    me = await user.get("/api/v1/users/me")
    assert me.status_code == 200
    assert has(me.json(), **PROFILE)["username"]  # non-empty: the client is logged in
    assert (await httpx.AsyncClient(base_url=gw.url).get("/api/v1/users/me")).status_code == 401
    patched = await user.patch("/api/v1/users/me",
                               json={"nickname": "새 닉네임", "phone_number": "010-1234-5678"})
    assert patched.status_code == 200, patched.text
    body = has(patched.json(), **PROFILE)
    assert body["nickname"] == "새 닉네임" and body["phone_number"] == "010-1234-5678"
    assert (await user.patch("/api/v1/users/me", json={"nickname": ""})).status_code == 422
    deleted = await user.delete("/api/v1/users/me")
    assert deleted.status_code == 204 and deleted.content == b""
    assert not (await user.get("/api/v1/users/me")).is_success


@contract(("GET", "/api/v1/users/me/characters"),
          ("GET", "/api/v1/users/me/characters/{character_name}/ownership"),
          ("GET", "/api/v1/character/catalog"))
async def test_characters(user: httpx.AsyncClient) -> None:
    owned = (await user.get("/api/v1/users/me/characters")).json()
    assert isinstance(owned, list) and owned
    for c in owned:
        has(c, id=str, code=str, name=str, type=str, dialog=str, acquired_at=STR_OR_NONE)
    assert "이코" in [c["name"] for c in owned]
    ownership = (await user.get("/api/v1/users/me/characters/이코/ownership")).json()
    assert has(ownership, character_name=str, owned=bool) == {
        **ownership, "character_name": "이코", "owned": True}
    other = (await user.get("/api/v1/users/me/characters/페티/ownership")).json()
    assert other["owned"] is False
    catalog = (await user.get("/api/v1/character/catalog")).json()
    assert len(catalog) == 13
    for c in catalog:
        has(c, name=str, type=str, dialog=str, match=STR_OR_NONE)


# ---- images and scan ----------------------------------------------------------------------------


async def upload(user: httpx.AsyncClient, channel: str = "scan") -> dict[str, Any]:
    r = await user.post(f"/api/v1/images/{channel}",
                        json={"filename": "p.png", "content_type": "image/png"})
    assert r.status_code == 200, r.text
    ticket = has(r.json(), key=str, upload_url=str, cdn_url=str, expires_in=int,
                 required_headers=dict)
    put = await httpx.AsyncClient().put(ticket["upload_url"], content=PNG,
                                        headers=ticket["required_headers"])
    assert put.status_code == 200
    return ticket


@contract(("POST", "/api/v1/images/{channel}"))
async def test_images(user: httpx.AsyncClient) -> None:
    ticket = await upload(user, "chat")
    assert ticket["upload_url"].startswith("http") and ticket["cdn_url"].startswith("http")
    assert (await httpx.AsyncClient().get(ticket["cdn_url"])).content == PNG


async def user_id_of(user: httpx.AsyncClient) -> str:
    me = (await user.get("/api/v1/users/me")).json()
    return str(me.get("user_id") or me["username"])


@contextlib.asynccontextmanager
async def projectors(settings: Settings) -> AsyncIterator[None]:
    """Every read-model projection running on the module's namespace and schema."""
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=4)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    side = ReadSide(pool, settings.database_url, settings.db_schema, client,
                    Layout(settings.namespace, settings.shards), schemas.registry)
    service = ProjectorService(
        side, select(), options=ProjectorOptions(batch_size=200, block_ms=100, lease_retry_s=0.1),
        metrics=ProjectionMetrics.create(CollectorRegistry()),
    )
    task = asyncio.create_task(service.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.aclose()
        await pool.close()


@contextlib.asynccontextmanager
async def projector(gw: Gateway) -> AsyncIterator[None]:
    task = asyncio.create_task(run_snapshot_tail(
        gw.redis, Layout(gw.settings.namespace, gw.settings.shards), block_ms=100))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def sse(user: httpx.AsyncClient, path: str, *, until: str,
              timeout: float = 10) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of a stream's events up to ``until`` (keepalives left out)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    async with asyncio.timeout(timeout), aconnect_sse(user, "GET", path) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for event in source.aiter_sse():
            if event.event == "keepalive":
                continue
            assert event.event, "only named events reach the client"
            seen.append((event.event, json.loads(event.data)))
            if event.event == until:
                break
    return seen


@contract(("POST", "/api/v1/scan"), ("GET", "/api/v1/scan/{job_id}/result"),
          ("GET", "/api/v1/scan/{job_id}/events"), ("GET", "/api/v1/scan/categories"))
async def test_scan(user: httpx.AsyncClient, gw: Gateway) -> None:
    ticket = await upload(user)
    r = await user.post("/api/v1/scan", json={"image_url": ticket["cdn_url"], "user_input": "생수병"})
    assert r.status_code == 202, r.text
    accepted = has(r.json(), job_id=str, stream_url=str, result_url=str, status=str)
    job = accepted["job_id"]
    assert accepted["stream_url"] == f"/api/v1/scan/{job}/events"
    assert accepted["result_url"] == f"/api/v1/scan/{job}/result"
    assert accepted["status"] == "queued"

    running = await user.get(accepted["result_url"])
    assert running.status_code == 202 and "retry-after" in running.headers
    has(running.json(), status=str, current_stage=STR_OR_NONE, progress=(int, float))

    owner = await user_id_of(user)
    async with projector(gw):
        await append(gw.store, job, owner, *full_scan(owner))
        events = await sse(user, accepted["stream_url"], until="done")
    names = [name for name, _ in events]
    assert names[0] == "queued" and names[-1] == "done"
    for name, data in events:
        has(data, job_id=str, stage=str, status=str, seq=int)
        assert data["stage"] == name or name == "done"
    result = await user.get(accepted["result_url"])
    assert result.status_code == 200
    body = has(result.json(), task_id=str, status=str, message=STR_OR_NONE,
               pipeline_result=dict, reward=(dict, NONE), error=(dict, NONE))
    assert body["status"] == "completed"
    pipeline = has(body["pipeline_result"], classification_result=dict, disposal_rules=(dict, NONE),
                   final_answer=dict)
    has(pipeline["classification_result"], classification=dict, situation_tags=list)
    has(pipeline["classification_result"]["classification"], major_category=str,
        middle_category=str, minor_category=STR_OR_NONE)
    has(pipeline["final_answer"], disposal_steps=dict, insufficiencies=list, user_answer=str)
    has(body["reward"], name=str, dialog=str, match_reason=STR_OR_NONE, type=str)

    categories = (await user.get("/api/v1/scan/categories")).json()
    assert isinstance(categories, list) and categories
    assert (await user.get(f"/api/v1/scan/{uuid.uuid4()}/result")).status_code == 404


# ---- chat ---------------------------------------------------------------------------------------


@contract(("POST", "/api/v1/chat"), ("GET", "/api/v1/chat"), ("GET", "/api/v1/chat/{chat_id}"),
          ("PATCH", "/api/v1/chat/{chat_id}"), ("DELETE", "/api/v1/chat/{chat_id}"))
async def test_chat_sessions(user: httpx.AsyncClient, gw: Gateway) -> None:
    created = await user.post("/api/v1/chat", json={"title": "분리배출 질문"})
    assert created.status_code == 201, created.text
    chat = has(created.json(), id=str, title=STR_OR_NONE, created_at=STR_OR_NONE)
    async with projectors(gw.settings):  # the list is a read model: let it catch up
        async with asyncio.timeout(15):
            while True:
                listing = (await user.get("/api/v1/chat", params={"limit": 10})).json()
                has(listing, chats=list, next_cursor=STR_OR_NONE)
                mine = [c for c in listing["chats"] if c["id"] == chat["id"]]
                if mine:
                    break
                await asyncio.sleep(0.1)
    has(mine[0], id=str, title=STR_OR_NONE, preview=STR_OR_NONE, message_count=int,
        last_message_at=STR_OR_NONE, created_at=STR_OR_NONE)
    history = (await user.get(f"/api/v1/chat/{chat['id']}")).json()
    has(history, id=str, title=STR_OR_NONE, messages=list, has_more=bool,
        next_cursor=STR_OR_NONE, created_at=STR_OR_NONE)
    for message in history["messages"]:
        has(message, id=str, role=str, content=str, image_url=STR_OR_NONE, intent=STR_OR_NONE,
            metadata=(dict, NONE), created_at=STR_OR_NONE)
    renamed = await user.patch(f"/api/v1/chat/{chat['id']}", json={"title": "새 제목"})
    assert renamed.status_code == 204
    assert (await user.get(f"/api/v1/chat/{chat['id']}")).json()["title"] == "새 제목"
    assert (await user.delete(f"/api/v1/chat/{chat['id']}")).status_code == 204
    assert (await user.get(f"/api/v1/chat/{chat['id']}")).status_code == 404


@contract(("POST", "/api/v1/chat/{chat_id}/messages"), ("POST", "/api/v1/chat/{job_id}/input"),
          ("GET", "/api/v1/chat/{job_id}/events"))
async def test_chat_turn(user: httpx.AsyncClient, gw: Gateway) -> None:
    from schemas.chat import CHAT_TURN, TurnQueued, TurnWaiting
    from schemas.envelope import Metadata

    chat = (await user.post("/api/v1/chat", json={})).json()
    r = await user.post(f"/api/v1/chat/{chat['id']}/messages",
                        json={"message": "근처 폐건전지 수거함 어디야?"})
    assert r.status_code == 202, r.text
    turn = has(r.json(), job_id=str, stream_url=str, status=str)
    job = turn["job_id"]
    assert turn["stream_url"] == f"/api/v1/chat/{job}/events" and turn["status"] == "submitted"

    # No chat worker runs here: the turn's first events are written as the worker would.
    owner = await user_id_of(user)
    envelopes = [schemas.registry.envelope(
        event, aggregate_id=job, aggregate_type=CHAT_TURN, metadata=Metadata(user_id=owner))
        for event in (
            TurnQueued(chat_id=chat["id"], user_id=owner, message="근처 폐건전지 수거함 어디야?",
                       user_message_id=str(uuid.uuid4())),
            TurnWaiting(input_type="location", message="위치를 알려 주세요"),
        )]
    await gw.store.append(envelopes, expected_version=ANY)
    events = await sse(user, turn["stream_url"], until="needs_input")
    assert events[-1][0] == "needs_input"
    for _, data in events:
        has(data, job_id=str, stage=str, status=str, seq=int)

    answered = await user.post(f"/api/v1/chat/{job}/input",
                               json={"type": "location",
                                     "data": {"latitude": 37.5665, "longitude": 126.978}})
    assert answered.status_code == 200, answered.text
    assert has(answered.json(), status=str, job_id=str) == {"status": "received", "job_id": job}


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
