"""The edge: CORS allow-list and preflights, rate limits (429 + Retry-After), body limits (413),
security headers, correlation ids from the request into events and JSON logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from eventstore.keys import Layout
from gateway.auth_tokens import bearer
from gateway.edge import REQUEST_ID, add_headers
from infra.gateway_app import create_gateway
from infra.settings import Settings
from infra.telemetry import JsonLogFormatter
from schemas.envelope import Envelope
from tests.gateway.conftest import FAST
from tests.gateway.helpers import PNG, asgi_client
from tests.gateway.oauth_stub.browser import FRONTEND, dev_login

pytestmark = pytest.mark.redis

EVIL = "https://evil.example"


async def test_preflights_for_the_api_and_the_upload_put(client: httpx.AsyncClient) -> None:
    r = await client.options("/api/v1/auth/kakao", headers={
        "Origin": FRONTEND, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-frontend-origin"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == FRONTEND
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "x-frontend-origin" in r.headers["access-control-allow-headers"]
    assert "Origin" in r.headers["vary"]

    r = await client.options("/api/v1/scan", headers={
        "Origin": FRONTEND, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization,x-idempotency-key"})
    assert r.status_code == 204
    allowed = r.headers["access-control-allow-headers"]
    assert {"content-type", "authorization", "x-idempotency-key"} <= set(allowed.split(", "))
    assert "POST" in r.headers["access-control-allow-methods"]

    r = await client.options("/uploads/scan/abc.png?expires=1&ct=image/png&sig=x", headers={
        "Origin": FRONTEND, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type"})
    assert r.status_code == 204
    assert "PUT" in r.headers["access-control-allow-methods"]

    r = await client.options("/api/v1/scan", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 400 and "access-control-allow-origin" not in r.headers
    r = await client.options("/api/v1/scan", headers={
        "Origin": FRONTEND, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-secret-header"})
    assert r.status_code == 400
    assert r.json()["code"] == "cors_rejected"


async def test_allowed_origins_are_echoed_with_credentials(client: httpx.AsyncClient,
                                                           settings: Settings) -> None:
    r = await client.get("/api/v1/users/me/characters",
                         headers={"Origin": FRONTEND, **bearer(settings, "alice")})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == FRONTEND
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "Retry-After" in r.headers["access-control-expose-headers"]
    r = await client.get("/api/v1/users/me/characters", headers={"Origin": EVIL})
    assert r.status_code == 401  # the error reaches the browser only for allowed origins
    assert "access-control-allow-origin" not in r.headers
    r = await client.get("/health", headers={"Origin": FRONTEND})
    assert r.headers["access-control-allow-origin"] == FRONTEND


def test_edge_headers_leave_a_routes_own_and_merge_vary() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": (
        (b"Content-Security-Policy", b"default-src 'self'"), (b"vary", b"Accept-Encoding"))}
    add_headers(start, {"content-security-policy": "default-src 'none'", "vary": "Origin",
                        "x-frame-options": "DENY"})
    assert sorted(start["headers"]) == sorted([
        (b"Content-Security-Policy", b"default-src 'self'"),
        (b"vary", b"Accept-Encoding, Origin"), (b"x-frame-options", b"DENY")])


@pytest.fixture
async def limited(settings: Settings, redis_targets: str) -> AsyncIterator[httpx.AsyncClient]:
    """Strict limits, on a single Redis (both windows in one script call) and on a Redis
    Cluster (one call per window: the keys live in other slots)."""
    strict = settings.with_(rate_limit_user=3, rate_limit_ip=5, rate_limit_window_s=30,
                            redis_url=redis_targets)
    async with asgi_client(create_gateway(strict, live=FAST)) as client:
        yield client


async def test_rate_limits_per_user_and_per_ip(limited: httpx.AsyncClient, settings: Settings
                                               ) -> None:
    alice, bob = bearer(settings, "alice"), bearer(settings, "bob")
    body = {"filename": "a.png", "content_type": "image/png"}
    for _ in range(3):
        assert (await limited.post("/api/v1/images/scan", json=body, headers=alice)).status_code == 200
    r = await limited.post("/api/v1/images/scan", json=body, headers=alice)
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["retry-after"]) <= 30
    # reads are not commands: never limited
    for _ in range(10):
        r = await limited.get("/api/v1/users/me/characters", headers=alice)
        assert r.status_code == 200
    # another user has a window of their own (alice's 4 + bob's 1 = 5 from this IP) ...
    assert (await limited.post("/api/v1/images/scan", json=body, headers=bob)).status_code == 200
    # ... and now the client IP's window is full for everyone
    r = await limited.post("/api/v1/images/scan", json=body, headers=bearer(settings, "carol"))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


async def test_ip_limit_applies_without_a_token(limited: httpx.AsyncClient) -> None:
    statuses = [(await limited.post("/api/v1/auth/refresh")).status_code for _ in range(7)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429, 429]


async def test_body_limits(settings: Settings) -> None:
    small = settings.with_(max_body_bytes=1024, upload_max_bytes=2048)
    alice = bearer(settings, "alice")
    async with asgi_client(create_gateway(small, live=FAST)) as client:
        big = {"image_url": "http://images.example.org/a.png", "user_input": "x" * 2000}
        r = await client.post("/api/v1/scan", json=big, headers=alice)
        assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"user_input": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}'

        r = await client.patch("/api/v1/users/me", content=chunks(),
                               headers={**alice, "Content-Type": "application/json"})
        assert r.status_code == 413
        r = await client.post("/api/v1/scan", json={"image_url": "http://images.example.org/a.png"},
                              headers=alice)
        assert r.status_code == 202  # small bodies pass
        up = (await client.post("/api/v1/images/scan",
                                json={"filename": "a.png", "content_type": "image/png"},
                                headers=alice)).json()
        path = up["upload_url"].removeprefix("http://testserver")
        r = await client.put(path, content=PNG + b"\x00" * 3000, headers={"Content-Type": "image/png"})
        assert r.status_code == 413
        assert (await client.put(path, content=PNG, headers={"Content-Type": "image/png"})
                ).status_code == 200


async def test_security_headers(client: httpx.AsyncClient, settings: Settings) -> None:
    for r in (await client.get("/health"), await client.get("/api/v1/users/me")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "strict-transport-security" not in r.headers  # plain http, not production
    data = (await client.get("/api/v1/auth/kakao", headers={"X-Frontend-Origin": FRONTEND})).json()
    page = await client.get(data["data"]["authorization_url"])
    assert "form-action" in page.headers["content-security-policy"]  # the page's own CSP wins
    assert page.headers["x-frame-options"] == "DENY"
    prod = settings.with_(production=True, cors_origins=(FRONTEND,))
    async with asgi_client(create_gateway(prod, live=FAST)) as https:
        r = await https.get("/health")
        assert r.headers["strict-transport-security"].startswith("max-age=")


async def test_request_ids_are_echoed_and_reach_the_events(
    client: httpx.AsyncClient, redis_client: aioredis.Redis, settings: Settings
) -> None:
    r = await client.get("/health", headers={"X-Request-ID": "req-abc.123"})
    assert r.headers["x-request-id"] == "req-abc.123"
    generated = (await client.get("/health", headers={"X-Request-ID": "bad id!\n"})).headers
    assert generated["x-request-id"] != "bad id!\n" and len(generated["x-request-id"]) == 32

    await dev_login(client, "correlated")
    me = (await client.get("/api/v1/users/me")).json()
    r = await client.patch("/api/v1/users/me", json={"nickname": "상관관계"},
                           headers={"X-Request-ID": "trace-patch-1"})
    assert r.status_code == 200
    keys = Layout(settings.namespace, settings.shards).keys_for(me["user_id"])
    envelopes = [Envelope.from_fields(f) for _, f in await redis_client.xrange(
        keys.aggregate(me["user_id"]))]
    assert envelopes[-1].type == "user.profile_updated"
    assert envelopes[-1].metadata.correlation_id == "trace-patch-1"
    assert envelopes[-1].metadata.user_id == me["user_id"]


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_access_log_lines_are_json_with_the_request_id(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    access = logging.getLogger("eco2.access")
    collect, level = Collect(), access.level
    access.addHandler(collect)
    access.setLevel(logging.INFO)
    try:
        await client.get("/api/v1/users/me/characters",
                         headers={"X-Request-ID": "log-me-1", **bearer(settings, "alice")})
    finally:
        access.removeHandler(collect)
        access.setLevel(level)
    [record] = [r for r in collect.records if getattr(r, "request_id", None) == "log-me-1"]
    line = json.loads(JsonLogFormatter("gateway").format(record))
    assert line["request_id"] == "log-me-1"
    assert (line["method"], line["path"], line["status"]) == (
        "GET", "/api/v1/users/me/characters", 200)
    assert line["user_id"] == "alice" and line["level"] == "info"
    assert isinstance(line["duration_ms"], float)
    # any record logged while a request is served carries its id
    token = REQUEST_ID.set("ctx-42")
    try:
        other = logging.LogRecord("gateway.x", logging.WARNING, __file__, 1, "hello %s",
                                  ("world",), None)
        assert json.loads(JsonLogFormatter("gateway").format(other)) | {"ts": ""} == {
            "ts": "", "level": "warning", "logger": "gateway.x", "msg": "hello world",
            "service": "gateway", "request_id": "ctx-42", "correlation_id": "ctx-42"}
    finally:
        REQUEST_ID.reset(token)
