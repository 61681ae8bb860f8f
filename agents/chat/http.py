"""The HTTP side of the live subagent adapters: one ``httpx.AsyncClient`` per adapter with
explicit timeouts, and one translation of HTTP failures into the chat's source errors.

Transient failures (timeouts, connection errors, 408/429/5xx) become ``SourceUnavailable``
(the node policy retries them); any other non-2xx or an unreadable body ``SourceBadData``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from agents.chat.errors import SourceBadData, SourceUnavailable

_RETRYABLE = frozenset({408, 429})


class HttpSource:
    """Owns an ``httpx.AsyncClient`` for one API; use ``async with`` or call ``aclose()``."""

    name = "http"

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            # connect quickly or not at all; the node policy bounds the whole call as well
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 3.0)),
            headers=dict(headers or {}),
            transport=transport,
            follow_redirects=False,
        )

    async def get_json(self, path: str, params: Mapping[str, Any]) -> Any:
        """GET ``path`` and return the decoded JSON body, or raise a ``SourceError``."""
        try:
            response = await self._client.get(
                path, params={k: v for k, v in params.items() if v is not None}
            )
        except httpx.TimeoutException as exc:
            raise SourceUnavailable(f"{self.name}: no answer in time") from exc
        except httpx.HTTPError as exc:
            raise SourceUnavailable(f"{self.name}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status in _RETRYABLE or status >= 500:
            raise SourceUnavailable(f"{self.name}: HTTP {status}")
        if status >= 300:
            raise SourceBadData(f"{self.name}: HTTP {status}: {response.text[:200]}")
        try:
            return response.json()
        except ValueError as exc:
            raise SourceBadData(f"{self.name}: the body is not JSON") from exc

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def as_dict(value: Any, what: str) -> dict[str, Any]:
    """``value`` when it is a JSON object, else ``SourceBadData`` naming ``what``."""
    if not isinstance(value, dict):
        raise SourceBadData(f"{what}: expected an object, got {type(value).__name__}")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    """``value`` as a list (a lone object becomes a one-item list, as data.go.kr sends one)."""
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise SourceBadData(f"{what}: expected a list, got {type(value).__name__}")
    return value
