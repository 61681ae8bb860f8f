"""What ``POST /api/v1/scan`` refuses, on a single Redis node and on a Redis Cluster: a revoked
token (403, before any complaint about the body) and an image whose owner erased the account
(422, and the orphan is deleted). Both are read in one round trip with the revocation check."""

from __future__ import annotations

import time

import httpx
import pytest
import redis.asyncio as aioredis

from gateway.auth_store import AuthStore
from gateway.auth_tokens import TokenCodec
from infra.media import FileMediaStore
from infra.settings import Settings
from media.keys import key_from_url
from media.owners import erase_owner
from tests.gateway.test_scan_api import commands, uploaded_image

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url(redis_targets: str) -> str:
    """This module runs on a single Redis node and on a Redis Cluster."""
    return redis_targets


async def test_a_revoked_token_is_refused_before_its_body_is_judged(
    alice: dict[str, str], client: httpx.AsyncClient, redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    image = await uploaded_image(client, alice)
    issued = TokenCodec.from_settings(settings).issue("alice")
    revoked = {"Authorization": f"Bearer {issued.access}"}
    store = AuthStore(redis_client, settings.namespace)
    assert (await client.post("/api/v1/scan", json={"image_url": image}, headers=revoked)
            ).status_code == 202
    await store.revoke(issued.access_claims)
    for body, extra in [
        ({"image_url": image}, {}),  # a valid scan
        ({"image_url": image, "model": "llama-3"}, {}),  # a 422 for anyone else
        ({"image_url": "https://evil.example.com/cat.png"}, {}),
        ({"image_url": image}, {"X-Idempotency-Key": "a b"}),
        ({}, {}),
    ]:
        r = await client.post("/api/v1/scan", json=body, headers={**revoked, **extra})
        assert (r.status_code, r.json()["code"]) == (403, "token_revoked"), (body, r.text)
    assert len(await commands(redis_client, settings)) == 1
    # Every token of the user issued up to now (account deletion): the other check read.
    await store.cut_off_user("alice", 600, now=time.time() + 1)
    r = await client.post("/api/v1/scan", json={"image_url": image}, headers=alice)
    assert (r.status_code, r.json()["code"]) == (403, "token_revoked"), r.text


async def test_an_erased_owners_image_is_refused_and_deleted(
    alice: dict[str, str], client: httpx.AsyncClient, redis_client: aioredis.Redis,
    settings: Settings,
) -> None:
    image = await uploaded_image(client, alice)
    key = key_from_url(image, settings)
    assert key is not None
    files = FileMediaStore(settings.data_dir / "media")
    # The erasure marks the owner first; the image is still stored (an object an S3 URL
    # re-created after the erasure stays so).
    await erase_owner(redis_client, settings.namespace, key)
    assert await files.exists(key)
    r = await client.post("/api/v1/scan", json={"image_url": image}, headers=alice)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "image_url"
    assert not await files.exists(key)
    assert await commands(redis_client, settings) == []
