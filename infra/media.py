"""The local media adapter: images as files under the data dir (``FileMediaStore``).

The port (``MediaStore``), its in-memory twin and the key rules live in the ``media`` package;
they are re-exported here for the modules that still import them from ``infra.media``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

from media.keys import ALIASES as ALIASES
from media.keys import CHANNELS as CHANNELS
from media.keys import EXTENSIONS as EXTENSIONS
from media.keys import MEDIA_PREFIX as MEDIA_PREFIX
from media.keys import SNIFF_BYTES as SNIFF_BYTES
from media.keys import cdn_url as cdn_url
from media.keys import checked_key
from media.keys import is_valid_key as is_valid_key
from media.keys import key_from_url as key_from_url
from media.keys import new_key as new_key
from media.keys import normalize_content_type as normalize_content_type
from media.keys import sniff_image_type as sniff_image_type
from media.store import InMemoryMediaStore as InMemoryMediaStore
from media.store import MediaStore as MediaStore
from media.store import MediaUnavailable as MediaUnavailable
from media.store import PresignedUpload as PresignedUpload
from media.store import StoredMedia as StoredMedia

# Files up to this size are read inline: a page-cache read of a few KiB takes microseconds, and
# the thread-pool hop around it was a tenth of the scan worker's CPU per scan. Larger files
# (photos of several MB) still go to a thread so the event loop is not held up.
INLINE_READ_BYTES = 64 * 1024


async def _read(path: Path) -> bytes:
    with path.open("rb") as file:
        if os.fstat(file.fileno()).st_size <= INLINE_READ_BYTES:
            return file.read()
    return await asyncio.to_thread(path.read_bytes)


class FileMediaStore:
    """Images as files under ``root`` (``data_dir/media``); the content type is sniffed on read,
    so it always matches the bytes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # The key pattern has no "..", absolute parts or separators beyond one "/".
        return self.root / checked_key(key)

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
            data = await _read(path)
        except FileNotFoundError:
            return None
        return StoredMedia(data, sniff_image_type(data[:SNIFF_BYTES]) or "application/octet-stream")

    async def exists(self, key: str) -> bool:
        # Inline, not in a thread: a stat of a local file takes microseconds, and the
        # thread-pool hop around it cost a tenth of the gateway's CPU per scan submission.
        return is_valid_key(key) and self._path(key).is_file()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    async def presign_put(self, key: str, content_type: str, ttl_s: int) -> PresignedUpload | None:
        return None  # the gateway signs /uploads/<key> and writes with put_new
