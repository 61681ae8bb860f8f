"""Edge security: cookie-authenticated writes only from allowed origins and as JSON, and a
rate-limit key a client cannot choose through X-Forwarded-For."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.types import Scope

from gateway.auth_tokens import mint_access_token
from gateway.edge import client_ip
from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import asgi_client

PWA = "http://localhost:5173"  # in the default CORS allow-list


def scope(peer: str, forwarded: str | None) -> Scope:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return {"type": "http", "client": (peer, 5000), "headers": headers}


def test_the_rate_limit_key_is_the_address_the_proxy_added() -> None:
    trusting = Settings(trust_forwarded=True)
    assert client_ip(scope("10.0.0.1", "6.6.6.6, 203.0.113.9"), trusting) == "203.0.113.9"
    assert client_ip(scope("10.0.0.1", "203.0.113.9"), trusting) == "203.0.113.9"
    assert client_ip(scope("10.0.0.1", None), trusting) == "10.0.0.1"
    assert client_ip(scope("10.0.0.1", "not-an-ip"), trusting) == "10.0.0.1"
    assert client_ip(scope("10.0.0.1", "6.6.6.6"), Settings()) == "10.0.0.1"
    chain = trusting.with_(trusted_proxies=("10.0.0.0/8",))
    # two proxies of ours: skip them from the right, the first foreign hop is the client
    assert client_ip(scope("10.0.0.1", "6.6.6.6, 203.0.113.9, 10.0.0.7"), chain) == "203.0.113.9"
    # a peer that is not our proxy cannot speak for anyone else
    assert client_ip(scope("198.51.100.4", "203.0.113.9"), chain) == "198.51.100.4"


@pytest.fixture
async def edge(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    async with asgi_client(create_gateway(settings, live=FAST)) as client:
        yield client, settings


@pytest.mark.redis
async def test_a_spoofed_forwarded_for_does_not_escape_the_ip_limit(settings: Settings) -> None:
    limited = settings.with_(trust_forwarded=True, rate_limit_ip=3, rate_limit_user=0)
    async with asgi_client(create_gateway(limited, live=FAST)) as client:
        statuses = []
        for n in range(6):
            r = await client.post("/api/v1/auth/logout", headers={
                "X-Forwarded-For": f"6.6.6.{n}, 203.0.113.9"})
            statuses.append(r.status_code)
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3:] == [429, 429, 429]


@pytest.mark.redis
async def test_cookie_writes_from_a_foreign_origin_are_refused(
    edge: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, settings = edge
    client.cookies.set("s_access", mint_access_token(settings, "alice"))
    body = '{"title": "csrf"}'
    for headers in (
        {"Origin": "https://evil.example", "Content-Type": "text/plain"},
        {"Origin": "https://evil.example", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
    ):
        r = await client.post("/api/v1/chat", content=body, headers=headers)
        assert r.status_code == 403, (headers, r.text)
        assert r.json()["code"] == "cross_site_refused"
    # the PWA (allowed, cross-origin), our own pages, and non-browser clients still write
    for headers in (
        {"Origin": PWA, "Content-Type": "application/json"},
        {"Origin": "http://testserver", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"},
        {"Content-Type": "application/json"},
    ):
        r = await client.post("/api/v1/chat", content=body, headers=headers)
        assert r.status_code == 201, (headers, r.text)


@pytest.mark.redis
async def test_json_routes_refuse_other_content_types(
    edge: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, settings = edge
    token = {"Authorization": f"Bearer {mint_access_token(settings, 'alice')}"}
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""):
        r = await client.post("/api/v1/chat", content='{"title": "x"}',
                              headers={**token, "Content-Type": kind})
        assert r.status_code == 415, (kind, r.text)
        assert r.json()["code"] == "unsupported_media_type"
    r = await client.post("/api/v1/chat", content='{"title": "x"}',
                          headers={**token, "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201
