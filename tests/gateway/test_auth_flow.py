"""Auth per API.md: the dev login as a browser does it (cookies set by the callback, 302 to
``<origin>/#/home``), refresh rotation, logout revoking both tokens, 401 vs 403, state checked
once, the dev provider off in production."""

from __future__ import annotations

import asyncio
import time
import uuid
from http.cookies import SimpleCookie

import httpx
import pytest
import redis.asyncio as aioredis

import schemas
from eventstore.snapshotting import SNAPSHOT_EVERY
from eventstore.store import ANY, EventStore
from gateway.auth_store import AuthStore
from gateway.auth_tokens import TokenCodec, TokenError, bearer
from infra.gateway_app import create_gateway
from infra.settings import Settings
from schemas.envelope import Metadata
from schemas.users import USER, UserLoggedIn
from tests.gateway.conftest import FAST
from tests.gateway.helpers import ServerThread, asgi_client
from tests.gateway.oauth_stub.browser import FRONTEND, dev_login, start_login

pytestmark = pytest.mark.redis


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    out = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            out[name] = cookie
    return out


async def test_dev_login_in_a_browser_like_flow_over_http(settings: Settings) -> None:
    with ServerThread(create_gateway(settings, live=FAST)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as browser:
            callback = await dev_login(browser, "재활용요정")
            assert callback.status_code == 302
            assert callback.headers["location"] == f"{FRONTEND}/#/home"
            cookies = set_cookies(callback)
            assert set(cookies) == {"s_access", "s_refresh", "s_login"}
            spent = cookies.pop("s_login")["s_login"]  # the login cookie, removed once used
            assert (spent["max-age"], spent["path"]) == ("0", "/api/v1/auth")
            for name, jar in cookies.items():
                morsel = jar[name]
                assert morsel["httponly"] is True
                assert morsel["samesite"].lower() == "lax"
                assert not morsel["secure"]  # plain http here; https or production → Secure
                assert morsel["path"] == "/"
            assert int(cookies["s_access"]["s_access"]["max-age"]) == settings.access_token_ttl_s
            assert int(cookies["s_refresh"]["s_refresh"]["max-age"]) == settings.refresh_token_ttl_s

            me = await browser.get("/api/v1/users/me")  # the cookie jar sends s_access
            assert me.status_code == 200, me.text
            body = me.json()
            assert body["username"] == "재활용요정"
            assert body["nickname"] == body["display_name"] == "재활용요정"
            assert body["provider"] == "dev"
            assert body["phone_number"] is None
            assert body["last_login_at"]


async def test_a_callback_link_from_another_browser_signs_nobody_in(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Login CSRF: an attacker starts a login, consents as themselves, and sends the victim the
    callback link. The victim's browser did not start that login, so nobody is signed in there,
    and the attacker's own login is not spent by the attempt."""
    data = await start_login(client)
    assert client.cookies.get("s_login") == data["state"]
    submit = await client.post(
        "/api/v1/auth/dev/authorize", data={"state": data["state"], "nickname": "attacker"}
    )
    link = submit.headers["location"]
    async with asgi_client(create_gateway(settings, live=FAST)) as victim:
        r = await victim.get(link)
        assert (r.status_code, r.headers["location"]) == (302, f"{FRONTEND}/#/login")
        assert not {"s_access", "s_refresh"} & set(set_cookies(r))
        assert (await victim.get("/api/v1/users/me")).status_code == 401
        # a login the victim started does not make the attacker's state theirs either
        await start_login(victim)
        r = await victim.get(link)
        assert r.headers["location"] == f"{FRONTEND}/#/login"
    r = await client.get(link)
    assert r.headers["location"] == f"{FRONTEND}/#/home"


async def test_start_login_shape_and_allowed_origins(client: httpx.AsyncClient) -> None:
    data = await start_login(client, "google")
    assert data["provider"] == "google"
    assert data["authorization_url"].startswith("http://testserver/api/v1/auth/dev/authorize?state=")
    assert len(data["state"]) >= 32 and data["expires_at"].endswith("Z")
    r = await client.get("/api/v1/auth/kakao", headers={"X-Frontend-Origin": "https://evil.example"})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "X-Frontend-Origin"
    r = await client.get("/api/v1/auth/naver", headers={"X-Frontend-Origin": FRONTEND})
    assert r.status_code == 404  # naver has no dev mapping and is not configured
    r = await client.get("/api/v1/auth/github", headers={"X-Frontend-Origin": FRONTEND})
    assert r.status_code == 404


async def test_a_state_is_used_once_and_failures_go_to_login(client: httpx.AsyncClient) -> None:
    data = await start_login(client)
    submit = await client.post(
        "/api/v1/auth/dev/authorize", data={"state": data["state"], "nickname": "once"}
    )
    first = await client.get(submit.headers["location"])
    assert first.headers["location"] == f"{FRONTEND}/#/home"
    assert "s_login" not in client.cookies  # the spent login cookie is removed
    client.cookies.clear()
    # same code and state replayed, even with the login cookie put back by hand
    again = await client.get(submit.headers["location"], headers={"cookie": f"s_login={data['state']}"})
    assert (again.status_code, again.headers["location"]) == (302, f"{FRONTEND}/#/login")
    assert not {"s_access", "s_refresh"} & set(set_cookies(again))
    forged = await client.get("/api/v1/auth/kakao/callback", params={"code": "x", "state": "nope"})
    assert forged.headers["location"] == f"{FRONTEND}/#/login"
    # a real state but a code nobody issued
    data = await start_login(client)
    bad = await client.get("/api/v1/auth/kakao/callback",
                           params={"code": "invented", "state": data["state"]})
    assert bad.headers["location"] == f"{FRONTEND}/#/login"
    # the provider reported an error
    data = await start_login(client)
    denied = await client.get("/api/v1/auth/kakao/callback",
                              params={"error": "access_denied", "state": data["state"]})
    assert denied.headers["location"] == f"{FRONTEND}/#/login"
    r = await client.post("/api/v1/auth/dev/authorize", data={"state": "nope", "nickname": "x"})
    assert r.status_code == 422


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_session(
    settings: Settings,
) -> None:
    no_grace = settings.with_(refresh_grace_s=0)  # any reuse is a reuse (grace: see below)
    async with asgi_client(create_gateway(no_grace, live=FAST)) as client:
        await dev_login(client, "rotator")
        old_access, old_refresh = client.cookies["s_access"], client.cookies["s_refresh"]
        r = await client.post("/api/v1/auth/refresh")
        assert r.status_code == 201, r.text
        assert r.json()["success"] is True
        new_access, new_refresh = client.cookies["s_access"], client.cookies["s_refresh"]
        assert new_access != old_access and new_refresh != old_refresh
        assert (await client.get("/api/v1/users/me")).status_code == 200

        # The spent refresh token again (a thief, or a replay): refused, and the session is revoked.
        client.cookies.clear()
        reuse = await client.post("/api/v1/auth/refresh", headers={"Cookie": f"s_refresh={old_refresh}"})
        assert reuse.status_code == 403
        r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {new_access}"})
        assert r.status_code == 403
        r = await client.post("/api/v1/auth/refresh", headers={"Cookie": f"s_refresh={new_refresh}"})
        assert r.status_code == 403


async def test_refresh_without_or_with_a_bad_token_is_refused(client: httpx.AsyncClient,
                                                              settings: Settings) -> None:
    assert (await client.post("/api/v1/auth/refresh")).status_code == 401
    r = await client.post("/api/v1/auth/refresh", headers={"Cookie": "s_refresh=not-a-jwt"})
    assert r.status_code == 401
    access = TokenCodec.from_settings(settings).issue("someone").access
    r = await client.post("/api/v1/auth/refresh", headers={"Cookie": f"s_refresh={access}"})  # wrong type
    assert r.status_code == 401


async def test_logout_revokes_both_tokens_and_clears_cookies(client: httpx.AsyncClient) -> None:
    await dev_login(client, "leaver")
    access, refresh = client.cookies["s_access"], client.cookies["s_refresh"]
    r = await client.post("/api/v1/auth/logout")
    assert r.status_code == 200
    assert r.json()["success"] is True and r.json()["data"]["message"]
    cleared = set_cookies(r)
    assert set(cleared) == {"s_access", "s_refresh"}
    assert all(int(jar[name]["max-age"]) == 0 for name, jar in cleared.items())
    assert "s_access" not in client.cookies
    r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 403  # revoked: the client logs out
    r = await client.get("/api/v1/users/me", headers={"Cookie": f"s_access={access}"})
    assert r.status_code == 403
    r = await client.post("/api/v1/auth/refresh", headers={"Cookie": f"s_refresh={refresh}"})
    assert r.status_code == 403
    assert (await client.get("/api/v1/users/me")).status_code == 401  # nothing presented


async def test_401_for_missing_invalid_or_expired_tokens(client: httpx.AsyncClient,
                                                         settings: Settings) -> None:
    assert (await client.get("/api/v1/users/me")).status_code == 401
    r = await client.get("/api/v1/users/me", headers={"Authorization": "Bearer garbage"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")
    other = TokenCodec("another-secret-0123456789", access_ttl_s=60, refresh_ttl_s=60)
    r = await client.get("/api/v1/users/me",
                         headers={"Authorization": f"Bearer {other.issue('u1').access}"})
    assert r.status_code == 401
    expired = TokenCodec.from_settings(settings).issue("u1", now=time.time() - 4 * 3600).access
    r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    r = await client.get("/api/v1/users/me", headers={"X-User-Id": "alice"})
    assert r.status_code == 401  # the old development header is gone
    r = await client.get("/api/v1/users/me", headers=bearer(settings, "never-registered"))
    assert r.status_code == 404  # a valid token of an unknown user


async def test_same_nickname_is_the_same_user_and_logins_are_recorded(
    client: httpx.AsyncClient,
) -> None:
    await dev_login(client, "twice")
    first = (await client.get("/api/v1/users/me")).json()
    client.cookies.clear()
    await dev_login(client, "twice", provider="google")
    second = (await client.get("/api/v1/users/me")).json()
    assert first["user_id"] == second["user_id"]
    assert second["last_login_at"] >= first["last_login_at"]


async def test_a_user_with_many_logins_signs_in_from_its_snapshot(
    client: httpx.AsyncClient, store: EventStore,
) -> None:
    await dev_login(client, "regular")
    user_id = (await client.get("/api/v1/users/me")).json()["user_id"]
    logins = [schemas.registry.envelope(
        UserLoggedIn(provider="dev"), aggregate_id=user_id, aggregate_type=USER,
        metadata=Metadata(causation_id=str(uuid.uuid4()))) for _ in range(SNAPSHOT_EVERY)]
    await store.append(logins, expected_version=ANY)
    client.cookies.clear()
    await dev_login(client, "regular")  # its loads fold 65 events: a snapshot is written
    assert (await client.get("/api/v1/users/me")).json()["user_id"] == user_id
    version = await store.version_of(user_id)
    assert version == SNAPSHOT_EVERY + 2 and (await store.read_from_snapshot(user_id)).after > 1
    client.cookies.clear()
    await dev_login(client, "regular")
    read = await store.read_from_snapshot(user_id)
    assert await store.version_of(user_id) == version + 1 and len(read.events) <= 2


async def test_dev_login_is_off_in_production(settings: Settings) -> None:
    prod = settings.with_(production=True, cors_origins=(FRONTEND,))
    async with asgi_client(create_gateway(prod, live=FAST)) as client:
        r = await client.get("/api/v1/auth/kakao", headers={"X-Frontend-Origin": FRONTEND})
        assert r.status_code == 404
        assert (await client.get("/api/v1/auth/dev/authorize?state=x")).status_code == 404
    off = settings.with_(dev_login=False)
    async with asgi_client(create_gateway(off, live=FAST)) as client:
        r = await client.get("/api/v1/auth/google", headers={"X-Frontend-Origin": FRONTEND})
        assert r.status_code == 404


async def test_cookies_are_secure_behind_https(settings: Settings) -> None:
    async with asgi_client(create_gateway(settings.with_(trust_forwarded=True), live=FAST)) as client:
        client.headers["X-Forwarded-Proto"] = "https"
        callback = await dev_login(client, "secure")
        cookies = set_cookies(callback)
        assert all(jar[name]["secure"] for name, jar in cookies.items())


def test_token_codec_checks_type_signature_and_subject(settings: Settings) -> None:
    codec = TokenCodec.from_settings(settings)
    pair = codec.issue("user-1")
    assert codec.decode(pair.access, "access").sub == "user-1"
    assert codec.decode(pair.refresh, "refresh").fam == pair.access_claims.fam
    with pytest.raises(TokenError):
        codec.decode(pair.access, "refresh")
    with pytest.raises(TokenError):
        codec.decode(pair.access[:-2] + "xx", "access")
    with pytest.raises(ValueError):
        codec.issue("bad id with spaces")


async def test_concurrent_refreshes_share_one_rotation_within_the_grace_window(
    client: httpx.AsyncClient, settings: Settings,
) -> None:
    await dev_login(client, "two-tabs")
    spent = client.cookies["s_refresh"]
    client.cookies.clear()
    cookie = {"Cookie": f"s_refresh={spent}"}
    first, second = await asyncio.gather(
        client.post("/api/v1/auth/refresh", headers=cookie),
        client.post("/api/v1/auth/refresh", headers=cookie),
    )
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    pairs = [{name: c[name].value for name, c in set_cookies(r).items()} for r in (first, second)]
    assert pairs[0] == pairs[1] and set(pairs[0]) == {"s_access", "s_refresh"}
    r = await client.get("/api/v1/users/me",
                         headers={"Authorization": f"Bearer {pairs[0]['s_access']}"})
    assert r.status_code == 200


async def test_reuse_after_the_grace_window_revokes_the_session(
    settings: Settings, redis_client: aioredis.Redis,
) -> None:
    short = settings.with_(refresh_grace_s=1)
    async with asgi_client(create_gateway(short, live=FAST)) as client:
        await dev_login(client, "late-reuse")
        spent = client.cookies["s_refresh"]
        r = await client.post("/api/v1/auth/refresh")
        assert r.status_code == 201
        new_access = client.cookies["s_access"]
        jti = TokenCodec.from_settings(short).decode(spent, "refresh").jti
        rotation = AuthStore(redis_client, short.namespace).token_key("rotated", jti)
        while await redis_client.exists(rotation):  # the grace window ends with this key
            await asyncio.sleep(0.05)
        client.cookies.clear()
        reuse = await client.post("/api/v1/auth/refresh", headers={"Cookie": f"s_refresh={spent}"})
        assert reuse.status_code == 403
        r = await client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {new_access}"})
        assert r.status_code == 403
