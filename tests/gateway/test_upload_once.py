"""Signed upload URLs are single-use and bound to a live owner.

A second PUT of the same URL must not replace an image a scan may already have used (it is
served as immutable), and a URL must stop working once its owner deleted the account: the image
would otherwise be re-created outside any owner set and served forever.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.gateway.helpers import JPEG, PNG
from tests.gateway.oauth_stub.browser import dev_login

pytestmark = pytest.mark.redis


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def signed_in(client: httpx.AsyncClient, nickname: str) -> None:
    r = await dev_login(client, nickname)
    assert r.headers["location"].endswith("/#/home")


async def new_upload(client: httpx.AsyncClient) -> dict[str, str]:
    r = await client.post(
        "/api/v1/images/scan", json={"filename": "a.png", "content_type": "image/png"}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


async def put(client: httpx.AsyncClient, url: str, data: bytes) -> httpx.Response:
    return await client.put(path_of(url), content=data, headers={"Content-Type": "image/png"})


async def test_a_used_upload_url_cannot_replace_the_image(client: httpx.AsyncClient) -> None:
    await signed_in(client, "once")
    up = await new_upload(client)
    assert (await put(client, up["upload_url"], PNG)).status_code == 200
    again = await put(client, up["upload_url"], JPEG)
    assert (again.status_code, again.json()["code"]) == (403, "upload_url_used"), again.text
    served = await client.get(path_of(up["cdn_url"]))
    assert served.status_code == 200 and served.content == PNG  # unchanged


async def test_upload_urls_die_with_their_owner(client: httpx.AsyncClient) -> None:
    await signed_in(client, "leaving")
    used = await new_upload(client)
    unused = await new_upload(client)
    assert (await put(client, used["upload_url"], PNG)).status_code == 200
    assert (await client.delete("/api/v1/users/me")).status_code == 204

    for ticket in (used, unused):
        r = await put(client, ticket["upload_url"], PNG)
        assert r.status_code == 403, r.text
        assert r.json()["code"] in ("upload_url_used", "upload_forbidden")
        assert (await client.get(path_of(ticket["cdn_url"]))).status_code == 404
