"""Images: signed upload URLs, the upload itself, and serving stored images.

``POST /api/v1/images/{channel}`` hands out a signed, expiring ``PUT`` URL for a fresh key;
``PUT /uploads/<key>?expires&ct&sig`` stores the body (no cookies: the URL is the credential;
403 only here, never elsewhere); ``GET /media/<key>`` serves it (the ``cdn_url``).

Every key handed out is first added to its user's set ``{<ns>:media}:owner:<user id>``, so that
deleting the account can delete the user's images (``erase_user_media``, docs/PRIVACY.md).
"""

from __future__ import annotations

from typing import cast

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth import current_user
from gateway.bodies import parse_body
from gateway.config import GatewayConfig
from gateway.errors import (
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    UploadSignatureInvalid,
    UploadUsed,
)
from gateway.params import parse_int
from gateway.signing import signed_upload_url, verify_upload
from gateway.state import GatewayState, gateway_state
from media.keys import (
    CHANNELS,
    SNIFF_BYTES,
    cdn_url,
    is_valid_key,
    new_key,
    normalize_content_type,
    sniff_image_type,
)
from media.owners import (
    bind_upload,
    claim_upload,
    erase_owner,
    owner_is_live,
    reopen_upload,
)

ALLOWED = "jpeg, png, webp, gif or heic images"


class UploadRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(min_length=1, max_length=100)


def public_base(request: Request, settings: GatewayConfig) -> str:
    """The absolute base URL clients reach us at: ``public_url`` or the request's own."""
    return (settings.public_url or str(request.base_url)).rstrip("/")


def owner_key(namespace: str, user_id: str) -> str:
    """The Redis set of the media keys handed out to ``user_id``."""
    return "{" + f"{namespace}:media" + "}" + f":owner:{user_id}"


async def erase_user_media(gw: GatewayState, user_id: str) -> int:
    """Delete every image ``user_id`` was given an upload URL for; returns how many keys.
    Idempotent: the set goes last, so an interrupted erase is finished by the next call."""
    redis = gw.resources.redis
    owned = owner_key(gw.resources.settings.namespace, user_id)
    keys = cast(set[str], await redis.smembers(owned))
    for key in sorted(keys):
        # First: no upload URL of the user can store (or, signed by S3, be served) again.
        await erase_owner(redis, gw.resources.settings.namespace, key)
        await gw.resources.media.delete(key)
    await redis.delete(owned)
    return len(keys)


async def create_upload(request: Request) -> JSONResponse:
    user_id = await current_user(request)
    gw = gateway_state(request)
    settings = gw.resources.settings
    channel = request.path_params["channel"]
    if channel not in CHANNELS:
        raise NotFound(f"unknown image channel {channel!r}; use one of {', '.join(CHANNELS)}")
    body = await parse_body(request, UploadRequest)
    content_type = normalize_content_type(body.content_type)
    if content_type is None:
        raise UnsupportedMediaType(f"content_type {body.content_type!r}: only {ALLOWED}")
    key = new_key(channel, content_type)
    # Before the URL exists: no stored image is ever missing from its owner's set.
    await gw.resources.redis.sadd(owner_key(settings.namespace, user_id), key)
    await bind_upload(gw.resources.redis, settings.namespace, key, user_id, settings.upload_ttl_s)
    base = public_base(request, settings)
    presigned = await gw.resources.media.presign_put(key, content_type, settings.upload_ttl_s)
    if presigned is not None:  # S3 signs it; it refuses a second write itself (If-None-Match)
        upload_url, expires, headers = presigned.url, presigned.expires_at, presigned.headers
    else:
        upload_url, expires = signed_upload_url(
            base, settings.secret_key, key, content_type, settings.upload_ttl_s
        )
        headers = {"Content-Type": content_type}
    return JSONResponse(
        {
            "key": key,
            "upload_url": upload_url,
            "cdn_url": cdn_url(base, key),
            "expires_in": settings.upload_ttl_s,
            "expires_at": expires,
            "required_headers": headers,
            "max_bytes": settings.upload_max_bytes,
        }
    )


async def put_upload(request: Request) -> JSONResponse:
    gw = gateway_state(request)
    settings = gw.resources.settings
    key = request.path_params["key"]
    query = request.query_params
    signed_type = verify_upload(
        settings.secret_key, key,
        expires=query.get("expires"), content_type=query.get("ct"), sig=query.get("sig"),
    )
    if not is_valid_key(key):  # unreachable with our own signatures; kept as a guard
        raise UploadSignatureInvalid("upload URL does not name a valid key")
    declared = normalize_content_type(request.headers.get("content-type"))
    if declared is None:
        raise UnsupportedMediaType(f"Content-Type must be one of the {ALLOWED}")
    if declared != normalize_content_type(signed_type):
        raise UnsupportedMediaType(f"Content-Type must be {signed_type}, as the URL was issued")
    limit = settings.upload_max_bytes
    length = parse_int(request.headers.get("content-length"))
    if length is not None and length > limit:
        raise PayloadTooLarge(f"image exceeds {limit} bytes")
    data = bytearray()
    sniffed: str | None = None
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:  # stop reading: the rest is never buffered
            raise PayloadTooLarge(f"image exceeds {limit} bytes")
        if sniffed is None and len(data) >= SNIFF_BYTES:
            sniffed = _sniff(bytes(data[:SNIFF_BYTES]))
    if sniffed is None:
        sniffed = _sniff(bytes(data))
    await _store_once(gw, key, bytes(data))
    return JSONResponse(
        {
            "key": key,
            "cdn_url": cdn_url(public_base(request, settings), key),
            "size": len(data),
            "content_type": sniffed,
        }
    )


async def _store_once(gw: GatewayState, key: str, data: bytes) -> None:
    """Store the one upload of ``key``: refused when the URL was used or its owner erased."""
    redis, settings = gw.resources.redis, gw.resources.settings
    owner = await claim_upload(redis, settings.namespace, key)
    if owner is None:
        raise UploadUsed("this upload URL was already used or revoked; request a new one")
    try:
        created = await gw.resources.media.put_new(key, data)
    except BaseException:
        await reopen_upload(redis, settings.namespace, key, owner, settings.upload_ttl_s)
        raise
    if not created:
        raise UploadUsed("an image is already stored under this key; request a new URL")
    if not await owner_is_live(redis, settings.namespace, key):  # erased while we wrote
        await gw.resources.media.delete(key)
        raise UploadUsed("the account this upload URL was issued to no longer exists")


def _sniff(head: bytes) -> str:
    kind = sniff_image_type(head)
    if kind is None:
        raise UnsupportedMediaType(f"the file is not one of the {ALLOWED}")
    return kind


async def serve_media(request: Request) -> Response:
    gw = gateway_state(request)
    stored = await gw.resources.media.get(request.path_params["key"])
    if stored is None:
        raise NotFound("no such image")
    return Response(
        stored.data,
        media_type=stored.content_type,
        headers={
            # Keys are never reused for other content: cache forever.
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )
