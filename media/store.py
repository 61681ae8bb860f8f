"""Where uploaded images live: the ``MediaStore`` port its users (gateway, scan handler, chat
graph) code against, and its in-memory twin. The adapters (local files, S3) live in ``infra``
and are injected by the composition root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from media.keys import SNIFF_BYTES, checked_key, sniff_image_type


class MediaUnavailable(Exception):
    """The media store cannot be reached or failed (the gateway answers 503)."""


@dataclass(frozen=True)
class StoredMedia:
    data: bytes
    content_type: str


@dataclass(frozen=True)
class PresignedUpload:
    """An upload URL signed by the store itself: the client PUTs the file to ``url`` sending
    exactly ``headers`` (they are part of the signature)."""

    url: str
    headers: dict[str, str]
    expires_at: int  # Unix seconds


class MediaStore(Protocol):
    """Where uploaded images live."""

    async def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (replacing an earlier upload); atomic for readers."""
        ...

    async def put_new(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` only if nothing is stored there yet (atomic
        create-if-absent); False, and nothing changed, when something is."""
        ...

    async def get(self, key: str) -> StoredMedia | None:
        """The bytes and content type stored under ``key``, or None."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether something is stored under ``key``."""
        ...

    async def delete(self, key: str) -> None:
        """Remove what is stored under ``key`` (idempotent: nothing stored is fine)."""
        ...

    async def presign_put(self, key: str, content_type: str, ttl_s: int) -> PresignedUpload | None:
        """A single-use upload URL for ``key`` signed by the store itself, or None when uploads
        go through the gateway's own signed ``/uploads/`` URL (the local stores)."""
        ...


class InMemoryMediaStore:
    """The in-memory twin of the file and S3 stores in ``infra`` (tests, handler fakes)."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        self.items[checked_key(key)] = bytes(data)

    async def put_new(self, key: str, data: bytes) -> bool:
        if checked_key(key) in self.items:
            return False
        self.items[key] = bytes(data)
        return True

    async def get(self, key: str) -> StoredMedia | None:
        data = self.items.get(key)
        if data is None:
            return None
        return StoredMedia(data, sniff_image_type(data[:SNIFF_BYTES]) or "application/octet-stream")

    async def exists(self, key: str) -> bool:
        return key in self.items

    async def delete(self, key: str) -> None:
        self.items.pop(checked_key(key), None)

    async def presign_put(self, key: str, content_type: str, ttl_s: int) -> PresignedUpload | None:
        return None
