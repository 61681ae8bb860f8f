"""Where chat images live, as the chat graph sees it: read the user's image, store a generated
one. Live: the same ``MediaStore`` uploads go to (served at ``<base>/media/<key>``)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Protocol
from urllib.parse import urlsplit

from agents.llm.ports import ImageInput
from media.keys import SNIFF_BYTES, cdn_url, new_key, sniff_image_type
from media.store import MediaStore


class ChatMedia(Protocol):
    async def save_image(self, data: bytes, content_type: str) -> str:
        """Store a generated image; returns the absolute URL that serves it."""
        ...

    async def load_image(self, url: str) -> ImageInput | None:
        """The chat image at ``url``: bytes for our own images, the URL alone for an allowed
        external one, None when ours is missing."""
        ...


class StoreChatMedia:
    """``ChatMedia`` on the upload ``MediaStore`` (``media_key``: our URL → key, else None)."""

    def __init__(
        self, store: MediaStore, *, base_url: str, media_key: Callable[[str], str | None]
    ) -> None:
        self._store = store
        self._base_url = base_url
        self._media_key = media_key

    async def save_image(self, data: bytes, content_type: str) -> str:
        """See ``ChatMedia.save_image``."""
        key = new_key("chat", content_type)
        await self._store.put(key, data)
        return cdn_url(self._base_url, key)

    async def load_image(self, url: str) -> ImageInput | None:
        """See ``ChatMedia.load_image``."""
        filename = PurePosixPath(urlsplit(url).path).name or None
        key = self._media_key(url)
        if key is None:
            return ImageInput(url=url, filename=filename)
        stored = await self._store.get(key)
        if stored is None:
            return None
        content_type = sniff_image_type(stored.data[:SNIFF_BYTES]) or stored.content_type
        return ImageInput(data=stored.data, content_type=content_type, url=url, filename=filename)


class InMemoryChatMedia:
    """The in-memory twin: images in a dict under ``memory://media/<key>`` URLs."""

    BASE = "memory://media/"

    def __init__(self) -> None:
        self.items: dict[str, tuple[bytes, str]] = {}

    async def save_image(self, data: bytes, content_type: str) -> str:
        key = f"chat/{uuid.uuid4().hex}.{content_type.rsplit('/', 1)[-1]}"
        self.items[key] = (bytes(data), content_type)
        return self.BASE + key

    async def load_image(self, url: str) -> ImageInput | None:
        filename = PurePosixPath(urlsplit(url).path).name or None
        if not url.startswith(self.BASE):
            return ImageInput(url=url, filename=filename)
        stored = self.items.get(url[len(self.BASE) :])
        if stored is None:
            return None
        return ImageInput(data=stored[0], content_type=stored[1], url=url, filename=filename)
