"""Uploaded images: the filesystem adapter of the media port and its in-memory twin.

The port itself (``MediaStore``), its value types and the key helpers are the gateway's
(``gateway.media``), re-exported here for the other processes' code.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from gateway.media import (
    CHANNELS,
    EXTENSIONS,
    MEDIA_PREFIX,
    SNIFF_BYTES,
    MediaStore,
    MediaUnavailable,
    PresignedUpload,
    StoredMedia,
    cdn_url,
    is_valid_key,
    key_from_url,
    new_key,
    normalize_content_type,
    sniff_image_type,
)

__all__ = [
    "CHANNELS", "EXTENSIONS", "MEDIA_PREFIX", "SNIFF_BYTES", "FileMediaStore", "InMemoryMediaStore",
    "MediaStore", "MediaUnavailable", "PresignedUpload", "StoredMedia", "cdn_url", "is_valid_key",
    "key_from_url", "new_key", "normalize_content_type", "sniff_image_type",
]


def _checked(key: str) -> str:
    if not is_valid_key(key):
        raise ValueError(f"invalid media key {key!r}")
    return key


class InMemoryMediaStore:
    """The in-memory twin of ``FileMediaStore`` (tests, handler fakes)."""

    def __init__(self) -> None:
        self.items: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        self.items[_checked(key)] = bytes(data)

    async def put_new(self, key: str, data: bytes) -> bool:
        if _checked(key) in self.items:
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
        self.items.pop(_checked(key), None)

    async def presign_put(self, key: str, content_type: str, ttl_s: int) -> PresignedUpload | None:
        return None


class FileMediaStore:
    """Images as files under ``root`` (``data_dir/media``); the content type is sniffed on read,
    so it always matches the bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # The key pattern has no "..", absolute parts or separators beyond one "/".
        return self.root / _checked(key)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(key), bytes(data))

    async def put_new(self, key: str, data: bytes) -> bool:
        return await asyncio.to_thread(self._write, self._path(key), bytes(data), replace=False)

    @staticmethod
    def _write(path: Path, data: bytes, *, replace: bool = True) -> bool:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(data)
            if replace:
                os.replace(tmp, path)  # readers see the old file or the whole new one
                return True
            try:
                os.link(tmp, path)  # atomic create-if-absent, the whole file at once
            except FileExistsError:
                return False
            return True
        finally:
            tmp.unlink(missing_ok=True)

    async def get(self, key: str) -> StoredMedia | None:
        if not is_valid_key(key):
            return None
        path = self._path(key)
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
        return StoredMedia(data, sniff_image_type(data[:SNIFF_BYTES]) or "application/octet-stream")

    async def exists(self, key: str) -> bool:
        return is_valid_key(key) and await asyncio.to_thread(self._path(key).is_file)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def presign_put(self, key: str, content_type: str, ttl_s: int) -> PresignedUpload | None:
        return None  # the gateway signs /uploads/<key> and writes with put_new
