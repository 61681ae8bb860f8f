"""Bad input is a 4xx with the error envelope, never a 500: Unicode digits and huge numbers
where an integer is expected, deeply nested JSON (in a body or inside a cursor), and cursors
carrying a naive datetime."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from eventstore.store import EventStore
from gateway.errors import InvalidRequest
from gateway.params import JsonTooDeep, load_json, parse_int, strict_int
from gateway.sse import resume_point
from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import ServerThread, append, as_user, asgi_client, full_scan
from tests.readmodels.pg import migrated_pool, new_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ROOT = "root-user"
HUGE = "9" * 5000  # past int()'s 4,300-digit limit
NOT_INTEGERS = ["²", "٣", "１２", HUGE, "1e3", "-1", "3.5", " ", "0x10"]
DEEP = "[" * 30_000 + "]" * 30_000


def cursor_of(value: object) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.fixture
async def api(settings: Settings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    schema = new_schema()
    async with migrated_pool(database_url, schema):
        ops = settings.with_(database_url=database_url, db_schema=schema, admins=(ROOT,))
        async with asgi_client(create_gateway(ops, live=FAST)) as client:
            yield client


def assert_envelope(r: httpx.Response, *statuses: int) -> None:
    assert r.status_code in statuses, (r.status_code, r.text[:300])
    body = r.json()
    assert isinstance(body["detail"], str) and isinstance(body["code"], str)


def test_only_ascii_integers_parse() -> None:
    assert parse_int("42") == 42 and parse_int(" 7 ") == 7
    for bad in NOT_INTEGERS:
        assert parse_int(bad) is None, bad
    with pytest.raises(InvalidRequest):
        strict_int("²", "limit", minimum=1, maximum=10)
    assert strict_int(None, "limit", minimum=1, maximum=10, default=5) == 5


def test_deep_json_is_refused_before_parsing() -> None:
    with pytest.raises(JsonTooDeep):
        load_json(DEEP)
    with pytest.raises(JsonTooDeep):
        load_json('{"a":' * 40 + "1" + "}" * 40)
    assert load_json('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}') == {"a": "[" * 41}


def test_unicode_digits_and_huge_last_event_ids_are_a_reset() -> None:
    for bad in ["²", HUGE, "１"]:
        start, note = resume_point(bad, 5)
        assert start == 0 and note is not None and note.startswith("reset:"), bad


@pytest.mark.parametrize("bad", ["²", HUGE, "0", "201"])
async def test_bad_limits_are_422(api: httpx.AsyncClient, alice: dict[str, str], bad: str) -> None:
    for path in ("/api/v1/chat", f"/api/v1/chat/{uuid.uuid4()}"):
        r = await api.get(path, params={"limit": bad}, headers=alice)
        assert_envelope(r, 422)


@pytest.fixture
def server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(create_gateway(settings, live=FAST)) as srv:
        yield srv


async def test_bad_last_event_ids_never_500(
    server: ServerThread, store: EventStore, alice: dict[str, str], projector: None
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice"))
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as http:
        # b"\xb2" is "²" as the server decodes header bytes (latin-1)
        for bad in [b"\xb2", HUGE.encode(), b"1" * 19, b"\xd9\xa3"]:
            headers = {**alice, "Last-Event-ID": bad}
            async with http.stream("GET", f"/api/v1/scan/{job}/events", headers=headers) as r:
                text = "".join([chunk async for chunk in r.aiter_text()])
            assert r.status_code == 200, (bad[:20], text[:200])
            assert ": reset:" in text


async def test_upload_expires_in_unicode_digits_is_403(api: httpx.AsyncClient) -> None:
    for bad in ["²", HUGE]:
        r = await api.put(
            "/uploads/scan/abc.png", params={"expires": bad, "ct": "image/png", "sig": "x"},
            content=b"\x89PNG", headers={"Content-Type": "image/png"},
        )
        assert_envelope(r, 403)


async def test_admin_integers_are_422(api: httpx.AsyncClient, settings: Settings) -> None:
    root = as_user(settings, ROOT)
    for bad in ["²", HUGE]:
        for query in ({"shard": bad}, {"limit": bad}):
            assert_envelope(await api.get("/api/v1/admin/dlq", params=query, headers=root), 422)
        assert_envelope(await api.get(f"/api/v1/admin/dlq/{bad}/1-0", headers=root), 422)
        r = await api.get("/api/v1/admin/tail", params={"backlog": bad}, headers=root)
        assert_envelope(r, 422)


async def test_deep_json_bodies_are_400(api: httpx.AsyncClient, alice: dict[str, str]) -> None:
    for body in (DEEP, '{"title": ' + DEEP + "}"):
        r = await api.post("/api/v1/chat", content=body,
                           headers={**alice, "Content-Type": "application/json"})
        assert_envelope(r, 400)


async def test_bad_cursors_are_422(api: httpx.AsyncClient, alice: dict[str, str]) -> None:
    r = await api.post("/api/v1/chat", json={"title": "t"}, headers=alice)
    chat = r.json()["id"]
    bad_cursors = [
        cursor_of(b"[" * 3000 + b"]" * 3000),  # base64 of deep JSON
        cursor_of(["2024-01-01T00:00:00", "m1"]),  # a naive datetime
        cursor_of(["2024-01-01T00:00:00+00:00", {"k": 1}]),
        cursor_of([1, "x"]),
        cursor_of(["x" * 10, "y"]),
        "%%%",
    ]
    for cursor in bad_cursors:
        for path in ("/api/v1/chat", f"/api/v1/chat/{chat}"):
            r = await api.get(path, params={"cursor": cursor}, headers=alice)
            assert_envelope(r, 422)
            assert r.json()["errors"][0]["field"] == "cursor"


async def test_a_naive_datetime_cursor_is_422(api: httpx.AsyncClient, alice: dict[str, str]) -> None:
    chat = (await api.post("/api/v1/chat", json={"title": "t"}, headers=alice)).json()["id"]
    naive = cursor_of(["2024-01-01T00:00:00", "m1"])
    for path in ("/api/v1/chat", f"/api/v1/chat/{chat}"):
        r = await api.get(path, params={"cursor": naive}, headers=alice)
        assert_envelope(r, 422)
