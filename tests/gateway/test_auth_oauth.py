"""Real OAuth 2.0 against a local stub server in the kakao, google and naver shapes: the
authorization URL, the code exchange (client credentials, redirect URI), userinfo parsing,
registration on the first login, and failures redirecting to ``/#/login``."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import redis.asyncio as aioredis

from eventstore.keys import Layout
from infra.gateway_app import create_gateway
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import ServerThread, asgi_client
from tests.gateway.oauth_stub.browser import FRONTEND, start_login
from tests.gateway.oauth_stub.server import CLIENT_ID, CLIENT_SECRET, OAuthStub

pytestmark = pytest.mark.redis

EXPECTED = {  # provider → (username, nickname, phone) the profile shows
    "kakao": ("kakao.friend@example.com", "카카오친구", "+82 10-1234-5678"),
    "google": ("g.person@example.com", "Google Person", None),
    "naver": ("naver.user@example.com", "네이버닉", "010-9876-5432"),
}


@pytest.fixture(scope="module")
def stub() -> Iterator[tuple[OAuthStub, str]]:
    oauth = OAuthStub()
    with ServerThread(oauth.app()) as server:
        yield oauth, server.url


def oauth_settings(settings: Settings, base: str) -> Settings:
    values: dict[str, object] = {}
    for p in ("kakao", "google", "naver"):
        values |= {f"{p}_client_id": CLIENT_ID, f"{p}_client_secret": CLIENT_SECRET,
                   f"{p}_base_url": base}
    return settings.with_(**values)


async def consent(authorization_url: str) -> str:
    """The browser at the provider: it redirects back to our callback with a code."""
    async with httpx.AsyncClient(timeout=10) as browser:
        r = await browser.get(authorization_url)
    assert r.status_code == 302, r.text
    return r.headers["location"]


@pytest.mark.parametrize("provider", ["kakao", "google", "naver"])
async def test_oauth_login_registers_then_logs_in(
    provider: str, stub: tuple[OAuthStub, str], settings: Settings,
    redis_client: aioredis.Redis,
) -> None:
    oauth, base = stub
    async with asgi_client(create_gateway(oauth_settings(settings, base), live=FAST)) as client:
        data = await start_login(client, provider)
        url = urlsplit(data["authorization_url"])
        assert f"{url.scheme}://{url.netloc}" == base
        query = parse_qs(url.query)
        assert query["client_id"] == [CLIENT_ID] and query["state"] == [data["state"]]
        assert query["redirect_uri"] == [f"http://testserver/api/v1/auth/{provider}/callback"]
        assert ("scope" in query) == (provider == "google")

        callback = await client.get(await consent(data["authorization_url"]))
        assert (callback.status_code, callback.headers["location"]) == (302, f"{FRONTEND}/#/home")
        token_call = [r for p, kind, r in oauth.requests if (p, kind) == (provider, "token")][-1]
        assert token_call["redirect_uri"] == query["redirect_uri"][0]

        me = (await client.get("/api/v1/users/me")).json()
        username, nickname, phone = EXPECTED[provider]
        assert (me["username"], me["nickname"], me["phone_number"]) == (username, nickname, phone)
        assert me["provider"] == provider

        # The second login is the same user: a login is recorded, nothing registered again.
        client.cookies.clear()
        data = await start_login(client, provider)
        await client.get(await consent(data["authorization_url"]))
        again = (await client.get("/api/v1/users/me")).json()
        assert again["user_id"] == me["user_id"]
        layout = Layout(settings.namespace, settings.shards)
        entries = await redis_client.xrange(layout.keys_for(me["user_id"]).aggregate(me["user_id"]))
        assert [f["type"] for _, f in entries] == ["user.registered", "user.logged_in"]


async def test_a_refused_code_or_a_failing_provider_goes_to_login(
    stub: tuple[OAuthStub, str], settings: Settings
) -> None:
    oauth, base = stub
    async with asgi_client(create_gateway(oauth_settings(settings, base), live=FAST)) as client:
        data = await start_login(client, "kakao")
        r = await client.get("/api/v1/auth/kakao/callback",
                             params={"code": "forged", "state": data["state"]})
        assert r.headers["location"] == f"{FRONTEND}/#/login"
        assert "s_access" not in r.headers.get("set-cookie", "")
        oauth.fail_token = True
        try:
            data = await start_login(client, "naver")
            r = await client.get(await consent(data["authorization_url"]))
            assert r.headers["location"] == f"{FRONTEND}/#/login"
        finally:
            oauth.fail_token = False
        # a state started for one provider is not accepted by another's callback
        data = await start_login(client, "google")
        location = await consent(data["authorization_url"])
        r = await client.get(location.replace("/google/", "/kakao/"))
        assert r.headers["location"] == f"{FRONTEND}/#/login"


async def test_an_unreachable_provider_goes_to_login(settings: Settings) -> None:
    dead = oauth_settings(settings, "http://127.0.0.1:9").with_(oauth_timeout_s=2.0)
    async with asgi_client(create_gateway(dead, live=FAST)) as client:
        data = await start_login(client, "google")
        r = await client.get("/api/v1/auth/google/callback",
                             params={"code": "c", "state": data["state"]})
        assert r.headers["location"] == f"{FRONTEND}/#/login"


async def test_configured_kakao_replaces_the_dev_login(
    stub: tuple[OAuthStub, str], settings: Settings
) -> None:
    _, base = stub
    only_kakao = settings.with_(kakao_client_id=CLIENT_ID, kakao_client_secret=CLIENT_SECRET,
                                kakao_base_url=base)
    async with asgi_client(create_gateway(only_kakao, live=FAST)) as client:
        assert (await start_login(client, "kakao"))["authorization_url"].startswith(base)
        assert "/auth/dev/authorize" in (await start_login(client, "google"))["authorization_url"]
