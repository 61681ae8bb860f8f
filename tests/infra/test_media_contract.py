"""One contract for the ``MediaStore`` port, run against every adapter: the in-memory twin, the
file store (the embedded default) and the S3 store on a local S3-compatible server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from infra.media import FileMediaStore
from infra.media_s3 import S3MediaStore, open_s3_media, parse_media_url
from media.store import InMemoryMediaStore, MediaStore
from tests.gateway.helpers import JPEG, PNG
from tests.s3_server import s3_endpoint, s3_settings

__all__ = ["s3_endpoint"]

KEY = "scan/" + "a" * 32 + ".png"
OTHER = "chat/" + "b" * 32 + ".jpg"


class MediaStoreContract:
    """What every ``MediaStore`` promises. Subclasses provide the ``store`` fixture."""

    async def test_put_get_exists_delete(self, store: MediaStore) -> None:
        assert await store.get(KEY) is None and not await store.exists(KEY)
        await store.put(KEY, PNG)
        stored = await store.get(KEY)
        assert stored is not None
        assert (stored.data, stored.content_type) == (PNG, "image/png")
        assert await store.exists(KEY)
        await store.put(KEY, JPEG)  # put replaces (generated images)
        replaced = await store.get(KEY)
        assert replaced is not None and replaced.content_type == "image/jpeg"
        await store.delete(KEY)
        await store.delete(KEY)  # idempotent
        assert await store.get(KEY) is None and not await store.exists(KEY)

    async def test_put_new_stores_once(self, store: MediaStore) -> None:
        assert await store.put_new(OTHER, JPEG)
        assert not await store.put_new(OTHER, PNG)
        stored = await store.get(OTHER)
        assert stored is not None and stored.data == JPEG  # the first write stays

    async def test_concurrent_put_new_lets_exactly_one_win(self, store: MediaStore) -> None:
        results = await asyncio.gather(*(store.put_new(KEY, PNG) for _ in range(8)))
        assert sorted(results) == [False] * 7 + [True]

    async def test_invalid_keys_are_refused(self, store: MediaStore) -> None:
        for bad in ("../escape.png", "scan/x.png", "/etc/passwd", "scan/" + "a" * 32 + ".exe"):
            with pytest.raises(ValueError):
                await store.put(bad, PNG)
            assert await store.get(bad) is None
            assert not await store.exists(bad)


class TestInMemoryStore(MediaStoreContract):
    @pytest.fixture
    def store(self) -> MediaStore:
        return InMemoryMediaStore()

    async def test_uploads_go_through_the_gateway(self, store: MediaStore) -> None:
        assert await store.presign_put(KEY, "image/png", 60) is None


class TestFileStore(MediaStoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> MediaStore:
        return FileMediaStore(tmp_path / "media")

    async def test_uploads_go_through_the_gateway(self, store: MediaStore) -> None:
        assert await store.presign_put(KEY, "image/png", 60) is None


class TestS3Store(MediaStoreContract):
    @pytest.fixture
    async def store(self, s3_endpoint: str) -> AsyncIterator[S3MediaStore]:
        settings = s3_settings(s3_endpoint, upload_max_bytes=4096)
        async with AsyncExitStack() as stack:
            s3 = await stack.enter_async_context(open_s3_media(settings))
            await s3.client.create_bucket(Bucket=s3.bucket)
            yield s3

    async def test_objects_live_under_the_prefix(self, store: S3MediaStore) -> None:
        await store.put(KEY, PNG)
        listed = await store.client.list_objects_v2(Bucket=store.bucket)
        assert [o["Key"] for o in listed["Contents"]] == [f"media/{KEY}"]
        assert parse_media_url("s3://b/a/b/") == ("b", "a/b/")
        assert parse_media_url("s3://b") == ("b", "")

    async def test_presigned_put_is_signed_by_s3_and_single_use(
        self, store: S3MediaStore
    ) -> None:
        upload = await store.presign_put(KEY, "image/png", 60)
        assert upload.headers == {"Content-Type": "image/png", "If-None-Match": "*"}
        query = parse_qs(urlsplit(upload.url).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert query["X-Amz-Expires"] == ["60"]
        # The conditional write and the type are part of the signature: a client cannot drop
        # them (moto does not check signatures, so the signed list is checked here).
        assert query["X-Amz-SignedHeaders"][0].split(";") == ["content-type", "host", "if-none-match"]
        async with httpx.AsyncClient() as http:
            first = await http.put(upload.url, content=PNG, headers=upload.headers)
            assert first.status_code == 200, first.text
            second = await http.put(upload.url, content=JPEG, headers=upload.headers)
            assert second.status_code == 412  # S3 refuses to replace it
        stored = await store.get(KEY)
        assert stored is not None and stored.data == PNG

    async def test_oversized_objects_are_never_read(self, store: S3MediaStore) -> None:
        upload = await store.presign_put(KEY, "image/png", 60)
        async with httpx.AsyncClient() as http:  # a presigned PUT cannot cap the size
            r = await http.put(upload.url, content=PNG + b"\0" * 5000, headers=upload.headers)
            assert r.status_code == 200
        assert not await store.exists(KEY)
        assert await store.get(KEY) is None
        listed = await store.client.list_objects_v2(Bucket=store.bucket)
        assert listed.get("KeyCount", 0) == 0  # and deleted


async def test_an_unreachable_s3_is_unavailable_not_a_crash() -> None:
    from infra.embedded._process import free_port
    from media.store import MediaUnavailable

    # Nothing listens there; two tries keep the SDK's backoff (random, up to seconds) short.
    settings = s3_settings(f"http://127.0.0.1:{free_port()}", s3_max_attempts=2)
    async with open_s3_media(settings) as store:
        for call in (store.get(KEY), store.put_new(KEY, PNG)):  # (each retried by the SDK)
            with pytest.raises(MediaUnavailable):
                await call
