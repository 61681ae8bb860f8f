"""POST /api/v1/scan: validation (422 naming the field), allow-listed image URLs, 202 at once,
idempotency keys; the category list."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as aioredis

import schemas
from eventstore.keys import Layout
from infra.settings import Settings
from schemas.envelope import Envelope
from schemas.scan import RequestScan
from tests.gateway.helpers import PNG

pytestmark = pytest.mark.redis


async def uploaded_image(client: httpx.AsyncClient, alice: dict[str, str]) -> str:
    r = await client.post(
        "/api/v1/images/scan",
        json={"filename": "p.png", "content_type": "image/png"},
        headers=alice,
    )
    up = r.json()
    parts = urlsplit(up["upload_url"])
    put = await client.put(
        f"{parts.path}?{parts.query}", content=PNG, headers={"Content-Type": "image/png"}
    )
    assert put.status_code == 200
    return str(up["cdn_url"])


async def commands(redis: aioredis.Redis, settings: Settings) -> list[Envelope]:
    out = []
    for keys in Layout(settings.namespace, settings.shards).all():
        for _, fields in await redis.xrange(keys.commands):
            out.append(Envelope.from_fields(fields))
    return out


async def test_accepted_scan_is_202_with_paths_and_one_command(
    alice: dict[str, str],
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    image = await uploaded_image(client, alice)
    r = await client.post(
        "/api/v1/scan",
        json={"image_url": image, "user_input": "생수병", "model": "local"},
        headers=alice,
    )
    assert r.status_code == 202, r.text
    body = r.json()
    job = body["job_id"]
    assert body == {
        "job_id": job,
        "stream_url": f"/api/v1/scan/{job}/events",
        "result_url": f"/api/v1/scan/{job}/result",
        "status": "queued",
    }
    assert body["result_url"].split("/")[-2] == job  # how the PWA reads the job id
    [command] = await commands(redis_client, settings)
    message = schemas.registry.decode_envelope(command)
    assert isinstance(message, RequestScan)
    assert (message.job_id, message.user_id, message.image_url) == (job, "alice", image)
    assert message.user_input == "생수병"
    assert command.aggregate_id == job and command.metadata.user_id == "alice"


async def test_missing_and_invalid_fields_are_422_naming_the_field(
    alice: dict[str, str],
    client: httpx.AsyncClient,
) -> None:
    r = await client.post("/api/v1/scan", json={"user_input": "x"}, headers=alice)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert [e["field"] for e in r.json()["errors"]] == ["image_url"]
    assert "image_url" in r.json()["detail"]
    r = await client.post("/api/v1/scan", headers=alice)  # no body at all
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "image_url"
    image = await uploaded_image(client, alice)
    r = await client.post(
        "/api/v1/scan", json={"image_url": image, "model": "llama-3"}, headers=alice
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "model"
    r = await client.post(
        "/api/v1/scan", json={"image_url": image, "user_input": "x" * 2001}, headers=alice
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "user_input"
    r = await client.post(
        "/api/v1/scan", json={"image_url": image}, headers={**alice, "X-Idempotency-Key": "a b"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "X-Idempotency-Key"


async def test_image_url_must_be_ours_or_allow_listed(
    alice: dict[str, str],
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    for url in [
        "https://evil.example.com/cat.png",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "not a url",
        "http://testserver/media/scan/" + "0" * 32 + ".png",  # ours, but never uploaded
        "http://elsewhere/media/scan/" + "0" * 32 + ".png",  # our path on a foreign host
    ]:
        r = await client.post("/api/v1/scan", json={"image_url": url}, headers=alice)
        assert r.status_code == 422, url
        assert r.json()["errors"][0]["field"] == "image_url"
    assert await commands(redis_client, settings) == []
    r = await client.post(
        "/api/v1/scan", json={"image_url": "https://images.example.org/a.jpg"}, headers=alice
    )
    assert r.status_code == 202


async def test_idempotency_key_gives_the_same_job_and_one_command(
    alice: dict[str, str],
    bob: dict[str, str],
    client: httpx.AsyncClient,
    redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    image = await uploaded_image(client, alice)
    headers = {**alice, "X-Idempotency-Key": "retry-123"}
    first = await client.post("/api/v1/scan", json={"image_url": image}, headers=headers)
    again = await client.post("/api/v1/scan", json={"image_url": image}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"]
    assert len(await commands(redis_client, settings)) == 1
    other_user = await client.post(
        "/api/v1/scan", json={"image_url": image}, headers={**bob, "X-Idempotency-Key": "retry-123"}
    )
    assert other_user.json()["job_id"] != first.json()["job_id"]
    fresh = await client.post("/api/v1/scan", json={"image_url": image}, headers=alice)
    assert fresh.json()["job_id"] not in (first.json()["job_id"], other_user.json()["job_id"])
    assert len(await commands(redis_client, settings)) == 3


async def test_scan_needs_a_user(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/scan", json={"image_url": "https://images.example.org/a.jpg"})
    assert (r.status_code, r.json()["code"]) == (401, "unauthorized")


async def test_categories(alice: dict[str, str], client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/scan/categories", headers=alice)
    assert r.status_code == 200
    assert "재활용폐기물" in r.json() and "대형폐기물" in r.json()


async def test_unknown_route_and_method_use_the_error_shape(
    alice: dict[str, str], client: httpx.AsyncClient
) -> None:
    r = await client.get("/api/v1/nope", headers=alice)
    assert r.status_code == 404 and r.json()["code"] == "not_found" and "detail" in r.json()
    r = await client.delete("/api/v1/scan", headers=alice)
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
