"""What a browser does to sign in with the dev provider, step by step, with httpx."""

from __future__ import annotations

import httpx

FRONTEND = "http://localhost:5173"


async def start_login(
    client: httpx.AsyncClient, provider: str = "kakao", origin: str = FRONTEND
) -> dict[str, str]:
    base = str(client.base_url).rstrip("/")
    r = await client.get(
        f"/api/v1/auth/{provider}",
        params={"redirect_uri": f"{base}/api/v1/auth/{provider}/callback"},
        headers={"X-Frontend-Origin": origin},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    return dict(body["data"])


async def dev_login(
    client: httpx.AsyncClient, nickname: str, provider: str = "kakao", origin: str = FRONTEND
) -> httpx.Response:
    """Start a login, fill in the dev page's form, follow to the callback; its response."""
    data = await start_login(client, provider, origin)
    page = await client.get(data["authorization_url"])
    assert page.status_code == 200, page.text
    assert 'name="nickname"' in page.text and data["state"] in page.text
    submit = await client.post(
        "/api/v1/auth/dev/authorize", data={"state": data["state"], "nickname": nickname}
    )
    assert submit.status_code == 303, submit.text
    return await client.get(submit.headers["location"])
