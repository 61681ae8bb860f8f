"""The ``MediaStore`` on the S3 API (AWS S3, MinIO, Ceph RGW, …), through aiobotocore.

Selected by ``ECO2_MEDIA_URL=s3://bucket/prefix``; endpoint, region and credentials come from the
usual AWS variables (read in ``infra/settings.py``; without keys the SDK's own chain applies, e.g.
a pod's web identity). Objects are ``<prefix>/<key>``; the gateway still serves them at
``/media/<key>`` so cdn URLs do not depend on where images live.

Uploads go straight to S3 with a URL S3 itself signs. The URL signs ``Content-Type`` and
``If-None-Match: *``: S3 performs the PUT only when no object exists (412 otherwise), so each
URL stores at most one image and nothing replaces it later. Presigned PUTs cannot cap the body
size, so reads refuse (and delete) an object above ``max_bytes``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from infra.settings import Settings
from media.keys import SNIFF_BYTES, is_valid_key, sniff_image_type
from media.store import MediaUnavailable, PresignedUpload, StoredMedia

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
else:
    S3Client = Any

_ABSENT = {"404", "NoSuchKey", "NotFound"}
_EXISTS = {"412", "PreconditionFailed", "409", "ConditionalRequestConflict"}


def parse_media_url(url: str) -> tuple[str, str]:
    """(bucket, key prefix ending in "/" or empty) of ``s3://bucket[/prefix]``."""
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def _unavailable(action: str) -> Iterator[None]:
    """SDK errors the call does not expect (network, credentials, 5xx) → ``MediaUnavailable``."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise MediaUnavailable(f"S3 {action} failed: {exc}") from exc


class S3MediaStore:
    """Images as objects of one bucket under a prefix."""

    def __init__(self, client: S3Client, bucket: str, prefix: str, *, max_bytes: int) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.max_bytes = max_bytes

    def _object(self, key: str) -> str:
        if not is_valid_key(key):
            raise ValueError(f"invalid media key {key!r}")
        return self.prefix + key

    async def put(self, key: str, data: bytes) -> None:
        """See ``MediaStore.put``."""
        obj = self._object(key)
        with _unavailable("put"):
            await self.client.put_object(
                Bucket=self.bucket, Key=obj, Body=data, ContentType=_type_of(data)
            )

    async def put_new(self, key: str, data: bytes) -> bool:
        """See ``MediaStore.put_new`` (an S3 conditional write, ``If-None-Match: *``)."""
        obj = self._object(key)
        with _unavailable("conditional put"):
            try:
                await self.client.put_object(
                    Bucket=self.bucket, Key=obj, Body=data,
                    ContentType=_type_of(data), IfNoneMatch="*",
                )
            except ClientError as exc:
                if _code(exc) in _EXISTS:
                    return False
                raise
        return True

    async def get(self, key: str) -> StoredMedia | None:
        """See ``MediaStore.get``."""
        if not is_valid_key(key):
            return None
        with _unavailable("get"):
            try:
                response = await self.client.get_object(Bucket=self.bucket, Key=self._object(key))
            except ClientError as exc:
                if _code(exc) in _ABSENT:
                    return None
                raise
            async with response["Body"] as body:
                if response.get("ContentLength", 0) > self.max_bytes:
                    await self.delete(key)  # only a presigned PUT could store it: never served
                    return None
                data = await body.read()
        return StoredMedia(data, _type_of(data))

    async def exists(self, key: str) -> bool:
        """See ``MediaStore.exists``."""
        if not is_valid_key(key):
            return False
        with _unavailable("head"):
            try:
                head = await self.client.head_object(Bucket=self.bucket, Key=self._object(key))
            except ClientError as exc:
                if _code(exc) in _ABSENT:
                    return False
                raise
        return head.get("ContentLength", 0) <= self.max_bytes

    async def delete(self, key: str) -> None:
        """See ``MediaStore.delete`` (S3 deletes are idempotent)."""
        obj = self._object(key)
        with _unavailable("delete"):
            await self.client.delete_object(Bucket=self.bucket, Key=obj)

    async def presign_put(self, key: str, content_type: str, ttl_s: int) -> PresignedUpload:
        """See ``MediaStore.presign_put``: signed by S3's own algorithm (SigV4), single use."""
        obj = self._object(key)
        with _unavailable("presign"):
            url = await self.client.generate_presigned_url(
                "put_object",
                Params={
                    "Bucket": self.bucket, "Key": obj,
                    "ContentType": content_type, "IfNoneMatch": "*",
                },
                ExpiresIn=ttl_s,
            )
        return PresignedUpload(
            url=url,
            headers={"Content-Type": content_type, "If-None-Match": "*"},
            expires_at=int(time.time()) + ttl_s,
        )


def _type_of(data: bytes) -> str:
    return sniff_image_type(data[:SNIFF_BYTES]) or "application/octet-stream"


@asynccontextmanager
async def open_s3_media(settings: Settings) -> AsyncIterator[S3MediaStore]:
    """The S3 store of ``settings.media_url`` with its client, closed on exit."""
    if settings.media_url is None:
        raise ValueError("ECO2_MEDIA_URL is not an s3:// URL")
    bucket, prefix = parse_media_url(settings.media_url)
    config = AioConfig(
        connect_timeout=5,
        read_timeout=30,
        retries={"max_attempts": settings.s3_max_attempts, "mode": "standard"},
        signature_version="s3v4",
    )
    session = get_session()
    async with session.create_client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key,
        aws_session_token=settings.aws_session_token,
        config=config,
    ) as client:
        yield S3MediaStore(client, bucket, prefix, max_bytes=settings.upload_max_bytes)
