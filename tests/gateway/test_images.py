"""Images: signed upload URLs, the upload's checks (403/413/415), serving the stored file."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from gateway.signing import signed_upload_url
from infra.media import FileMediaStore, InMemoryMediaStore, key_from_url, sniff_image_type
from infra.settings import Settings
from tests.gateway.helpers import JPEG, PNG

pytestmark = pytest.mark.redis


async def new_upload(
    client: httpx.AsyncClient, user: dict[str, str], content_type: str = "image/png"
) -> dict[str, str]:
    r = await client.post(
        "/api/v1/images/scan",
        json={"filename": "bottle.png", "content_type": content_type},
        headers=user,
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def test_upload_roundtrip_and_served_back(
    alice: dict[str, str], client: httpx.AsyncClient
) -> None:
    up = await new_upload(client, alice)
    assert up["upload_url"].startswith("http://testserver/uploads/scan/")
    assert up["cdn_url"] == f"http://testserver/media/{up['key']}"
    assert up["expires_in"] == 60
    assert up["required_headers"] == {"Content-Type": "image/png"}
    put = await client.put(
        path_of(up["upload_url"]), content=PNG, headers={"Content-Type": "image/png"}
    )
    assert put.status_code == 200, put.text
    assert put.json()["size"] == len(PNG)
    got = await client.get(path_of(up["cdn_url"]))
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"


async def test_every_route_needs_a_user_except_the_signed_put(
    alice: dict[str, str], client: httpx.AsyncClient
) -> None:
    r = await client.post(
        "/api/v1/images/scan", json={"filename": "a", "content_type": "image/png"}
    )
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    up = await new_upload(client, alice)
    put = await client.put(
        path_of(up["upload_url"]), content=PNG, headers={"Content-Type": "image/png"}
    )
    assert put.status_code == 200  # no cookie, no header: the URL is the credential


async def test_bad_requests_for_an_upload_url(
    alice: dict[str, str], client: httpx.AsyncClient
) -> None:
    r = await client.post("/api/v1/images/scan", json={"content_type": "image/png"}, headers=alice)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "filename"
    assert "filename" in r.json()["detail"]
    r = await client.post(
        "/api/v1/images/scan",
        json={"filename": "a.txt", "content_type": "text/plain"},
        headers=alice,
    )
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type")
    r = await client.post(
        "/api/v1/images/videos", json={"filename": "a", "content_type": "image/png"}, headers=alice
    )
    assert r.status_code == 404
    r = await client.post("/api/v1/images/scan", content=b"{not json",
                          headers={**alice, "Content-Type": "application/json"})
    assert (r.status_code, r.json()["code"]) == (400, "malformed_body")


async def test_non_image_upload_is_415(alice: dict[str, str], client: httpx.AsyncClient) -> None:
    up = await new_upload(client, alice)
    url = path_of(up["upload_url"])
    r = await client.put(
        url, content=b"hello, not an image at all.....", headers={"Content-Type": "image/png"}
    )
    assert (r.status_code, r.json()["code"]) == (415, "unsupported_media_type")
    r = await client.put(url, content=PNG, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    r = await client.put(url, content=b"", headers={"Content-Type": "image/png"})
    assert r.status_code == 415
    assert (await client.get(path_of(up["cdn_url"]))).status_code == 404  # nothing stored


async def test_a_different_image_type_than_declared_is_stored_as_sniffed(
    alice: dict[str, str],
    client: httpx.AsyncClient,
) -> None:
    up = await new_upload(client, alice, "image/png")
    r = await client.put(
        path_of(up["upload_url"]), content=JPEG, headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 200
    got = await client.get(path_of(up["cdn_url"]))
    assert got.headers["content-type"] == "image/jpeg"


async def test_too_large_is_413_with_and_without_content_length(
    alice: dict[str, str], client: httpx.AsyncClient
) -> None:
    up = await new_upload(client, alice)
    url = path_of(up["upload_url"])
    big = PNG + b"\x00" * 5000  # the test limit is 4096 bytes
    r = await client.put(url, content=big, headers={"Content-Type": "image/png"})
    assert (r.status_code, r.json()["code"]) == (413, "payload_too_large")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: the stream is counted
        yield PNG
        for _ in range(10):
            yield b"\x00" * 1000

    r = await client.put(url, content=chunked(), headers={"Content-Type": "image/png"})
    assert r.status_code == 413
    assert (await client.get(path_of(up["cdn_url"]))).status_code == 404


async def test_expired_and_forged_signatures_are_403(
    alice: dict[str, str], client: httpx.AsyncClient, settings: Settings
) -> None:
    up = await new_upload(client, alice)
    key = up["key"]
    expired, _ = signed_upload_url(
        "http://testserver", settings.secret_key, key, "image/png", 60, now=time.time() - 3600
    )
    r = await client.put(path_of(expired), content=PNG, headers={"Content-Type": "image/png"})
    assert (r.status_code, r.json()["code"]) == (403, "upload_url_expired")

    parts = urlsplit(up["upload_url"])
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forgeries = [
        {**query, "sig": query["sig"][:-2] + "AA"},
        {**query, "expires": str(int(query["expires"]) + 10_000)},
        {**query, "ct": "image/gif"},
        {k: v for k, v in query.items() if k != "sig"},
    ]
    for forged in forgeries:
        r = await client.put(
            f"{parts.path}?{urlencode(forged)}",
            content=PNG,
            headers={"Content-Type": forged.get("ct", "image/png")},
        )
        assert (r.status_code, r.json()["code"]) == (403, "invalid_signature"), forged
    other_key = key.replace(key.split("/")[1][:4], "ffff")
    r = await client.put(
        f"/uploads/{other_key}?{parts.query}", content=PNG, headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 403


async def test_media_paths_cannot_escape_the_store(client: httpx.AsyncClient) -> None:
    for path in ["/media/../../etc/passwd", "/media/scan/..%2F..%2Fsecret", "/media/scan/x.png"]:
        r = await client.get(path)
        assert r.status_code == 404


def test_key_from_url_accepts_only_our_media_urls(tmp_path: Path) -> None:
    key = "scan/" + "a" * 32 + ".png"
    public = Settings(public_url="https://eco2.example.com", data_dir=tmp_path)
    assert key_from_url(f"https://eco2.example.com/media/{key}", public) == key
    assert key_from_url(f"https://evil.example.com/media/{key}", public) is None
    assert key_from_url(f"http://eco2.example.com/media/{key}", public) is None
    assert key_from_url(f"https://eco2.example.com/media/{key}?x=1", public) is None
    assert key_from_url("https://eco2.example.com/media/scan/../x.png", public) is None
    local = Settings(data_dir=tmp_path)
    assert key_from_url(f"http://127.0.0.1:8000/media/{key}", local) == key
    assert key_from_url("ftp://host/media/" + key, local) is None


def test_sniffing_knows_the_allowed_types() -> None:
    assert sniff_image_type(PNG) == "image/png"
    assert sniff_image_type(JPEG) == "image/jpeg"
    assert sniff_image_type(b"GIF89a" + b"\x00" * 10) == "image/gif"
    assert sniff_image_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image_type(b"\x00\x00\x00\x18ftypheic\x00\x00") == "image/heic"
    assert sniff_image_type(b"%PDF-1.7") is None
    assert sniff_image_type(b"<svg xmlns=") is None


async def test_file_store_roundtrip(tmp_path: Path) -> None:
    store = FileMediaStore(tmp_path / "media")
    key = "chat/" + "b" * 32 + ".jpg"
    assert await store.get(key) is None
    assert not await store.exists(key)
    await store.put(key, JPEG)
    stored = await store.get(key)
    assert stored is not None and stored.data == JPEG and stored.content_type == "image/jpeg"
    assert await store.exists(key)
    assert [p.name for p in (tmp_path / "media" / "chat").iterdir()] == [key.split("/")[1]]
    with pytest.raises(ValueError):
        await store.put("../escape.png", PNG)
    await store.delete(key)
    await store.delete(key)  # idempotent
    assert await store.get(key) is None and not await store.exists(key)


async def test_in_memory_store_deletes_like_the_file_store() -> None:
    store = InMemoryMediaStore()
    key = "scan/" + "c" * 32 + ".png"
    await store.put(key, PNG)
    assert await store.exists(key)
    await store.delete(key)
    await store.delete(key)
    assert await store.get(key) is None and not await store.exists(key)
