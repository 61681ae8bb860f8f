"""Sign-in, the profile, characters and image uploads."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.contract.endpoints import (
    ORIGIN,
    STR_OR_NONE,
    Gateway,
    contract,
    dev_login,
    has,
    upload,
)
from tests.gateway.helpers import PNG

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


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


# ---- images -----------------------------------------------------------------------------------


@contract(("POST", "/api/v1/images/{channel}"))
async def test_images(user: httpx.AsyncClient) -> None:
    ticket = await upload(user, "chat")
    assert ticket["upload_url"].startswith("http") and ticket["cdn_url"].startswith("http")
    assert (await httpx.AsyncClient().get(ticket["cdn_url"])).content == PNG
