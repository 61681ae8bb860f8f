"""Uploads with ``ECO2_MEDIA_URL=s3://…``: the URL is signed by S3, the image is served by the
gateway from the bucket, a URL stores once, and an owner's erasure outlives the URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest

from infra.gateway_app import create_gateway
from infra.media_s3 import open_s3_media
from infra.settings import Settings
from tests.gateway.conftest import FAST
from tests.gateway.helpers import JPEG, PNG, asgi_client
from tests.gateway.oauth_stub.browser import dev_login
from tests.s3_server import s3_endpoint, s3_settings

__all__ = ["s3_endpoint"]

pytestmark = pytest.mark.redis


@pytest.fixture
async def s3_app_settings(settings: Settings, s3_endpoint: str) -> Settings:
    s3 = s3_settings(s3_endpoint)
    with_s3 = settings.with_(
        media_url=s3.media_url, s3_endpoint_url=s3.s3_endpoint_url, s3_region=s3.s3_region,
        aws_access_key_id=s3.aws_access_key_id, aws_secret_access_key=s3.aws_secret_access_key,
    )
    async with open_s3_media(with_s3) as store:
        await store.client.create_bucket(Bucket=store.bucket)
    return with_s3


@pytest.fixture
async def s3_client(s3_app_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_gateway(s3_app_settings, live=FAST)) as c:
        yield c


async def test_s3_upload_is_single_use_and_dies_with_its_owner(
    s3_client: httpx.AsyncClient, s3_app_settings: Settings, s3_endpoint: str
) -> None:
    await dev_login(s3_client, "s3-user")
    r = await s3_client.post(
        "/api/v1/images/scan", json={"filename": "a.png", "content_type": "image/png"}
    )
    assert r.status_code == 200, r.text
    ticket = r.json()
    assert ticket["upload_url"].startswith(s3_endpoint + "/")  # straight to S3
    assert ticket["required_headers"] == {"Content-Type": "image/png", "If-None-Match": "*"}
    cdn_path = urlsplit(ticket["cdn_url"]).path
    async with httpx.AsyncClient() as s3:
        put = await s3.put(ticket["upload_url"], content=PNG, headers=ticket["required_headers"])
        assert put.status_code == 200, put.text
        again = await s3.put(ticket["upload_url"], content=JPEG,
                             headers=ticket["required_headers"])
        assert again.status_code == 412
        served = await s3_client.get(cdn_path)
        assert served.status_code == 200 and served.content == PNG

        scan = await s3_client.post("/api/v1/scan", json={"image_url": ticket["cdn_url"]})
        assert scan.status_code == 202, scan.text

        assert (await s3_client.delete("/api/v1/users/me")).status_code == 204
        assert (await s3_client.get(cdn_path)).status_code == 404
        # S3 cannot revoke its signature: the URL stores again within its TTL, but the
        # object belongs to an erased owner, so it is never served and is deleted on sight.
        late = await s3.put(ticket["upload_url"], content=PNG, headers=ticket["required_headers"])
        assert late.status_code == 200
    assert (await s3_client.get(cdn_path)).status_code == 404
    async with open_s3_media(s3_app_settings) as store:
        listed = await store.client.list_objects_v2(Bucket=store.bucket)
        assert listed.get("KeyCount", 0) == 0
