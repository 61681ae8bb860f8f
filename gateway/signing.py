"""Signed, expiring upload URLs: HMAC-SHA256 over key, expiry and content type.

The URL carries ``expires`` (Unix seconds), ``ct`` (the content type the upload must declare)
and ``sig``; nothing else is trusted, so the PUT needs no cookie and cannot be replayed after
expiry, onto another key, or with another content type.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import urlencode

from gateway.errors import UploadExpired, UploadSignatureInvalid
from gateway.params import parse_int

UPLOAD_PREFIX = "/uploads/"
_PURPOSE = b"eco2-upload-v1"  # domain separation from every other use of the secret


def signature(secret: str, key: str, expires: int, content_type: str) -> str:
    message = b"\n".join([_PURPOSE, key.encode(), str(expires).encode(), content_type.encode()])
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signed_upload_url(
    base_url: str, secret: str, key: str, content_type: str, ttl_s: int, *, now: float | None = None
) -> tuple[str, int]:
    """(absolute upload URL, expiry in Unix seconds) for a PUT of ``key``."""
    expires = int(now if now is not None else time.time()) + ttl_s
    query = urlencode(
        {"expires": expires, "ct": content_type, "sig": signature(secret, key, expires, content_type)}
    )
    return f"{base_url.rstrip('/')}{UPLOAD_PREFIX}{key}?{query}", expires


def verify_upload(
    secret: str,
    key: str,
    *,
    expires: str | None,
    content_type: str | None,
    sig: str | None,
    now: float | None = None,
) -> str:
    """Check an upload URL's query; returns the signed content type.

    Raises ``UploadSignatureInvalid`` for a missing or forged signature and ``UploadExpired``
    once the URL's time is up (checked after the signature, so forged expiries are "forged").
    """
    at = parse_int(expires)
    if at is None or not content_type or not sig:
        raise UploadSignatureInvalid("upload URL is not signed")
    expected = signature(secret, key, at, content_type)
    if not hmac.compare_digest(expected, sig):
        raise UploadSignatureInvalid("upload URL signature is invalid")
    if (now if now is not None else time.time()) > at:
        raise UploadExpired("upload URL has expired; request a new one")
    return content_type
