"""The news collector: fetch the configured RSS/Atom feeds, parse them, store the articles.

The fetch is a port (``FeedFetcher``) with an httpx adapter (explicit timeouts, a size cap,
redirects followed) and an in-memory twin for tests and offline runs. One failing feed never
stops the others: its error is reported and the rest are stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import httpx

from infra.importers.feed_parse import FeedError, FeedSource, parse_feed
from readmodels.news import Article, upsert_articles

if TYPE_CHECKING:
    from readmodels.db import Pool

MAX_FEED_BYTES = 4 * 1024 * 1024
CONCURRENCY = 4
USER_AGENT = "eco2-news-collector/1.0"
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"


class FeedFetcher(Protocol):
    async def fetch(self, url: str) -> bytes:
        """The document at ``url``; raises ``FeedError`` when it cannot be had."""
        ...


class HttpFeedFetcher:
    """Fetches feeds over HTTP with httpx: connect/read timeouts, at most ``max_bytes``."""

    def __init__(
        self,
        *,
        timeout_s: float = 10.0,
        max_bytes: int = MAX_FEED_BYTES,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._max_bytes = max_bytes
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            follow_redirects=True,
            max_redirects=5,
            headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
            transport=transport,
        )

    async def fetch(self, url: str) -> bytes:
        """The body at ``url``; non-2xx, timeouts, oversize bodies raise ``FeedError``."""
        try:
            async with self._client.stream("GET", url) as response:
                if response.status_code >= 300:
                    raise FeedError(f"HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise FeedError(f"feed larger than {self._max_bytes} bytes")
                return bytes(body)
        except httpx.HTTPError as exc:
            raise FeedError(f"{type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpFeedFetcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class MemoryFeedFetcher:
    """The in-memory twin: documents by URL (a missing URL fails like a 404)."""

    def __init__(self, documents: Mapping[str, bytes]) -> None:
        self.documents = dict(documents)

    async def fetch(self, url: str) -> bytes:
        """The stored document; ``FeedError`` when there is none."""
        if url not in self.documents:
            raise FeedError("HTTP 404")
        return self.documents[url]


@dataclass
class CollectResult:
    articles: list[Article] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # feed url → what went wrong


def feed_sources(entries: Iterable[str]) -> list[FeedSource]:
    """Feeds from the ``ECO2_NEWS_FEEDS`` entries: ``[category=]url`` (category defaults to
    'auto'); the source key is the feed's host. Raises ``ValueError`` on a bad entry."""
    feeds = []
    for entry in entries:
        category, sep, url = entry.strip().partition("=")
        if not sep or "://" in category:
            category, url = "auto", entry.strip()
        host = urlsplit(url).hostname or "feed"
        feeds.append(FeedSource(url=url, category=category.strip(), source=host))
    return feeds


async def collect(
    fetcher: FeedFetcher, feeds: Iterable[FeedSource], *, now: datetime | None = None
) -> CollectResult:
    """Fetch and parse every feed (a few at a time); failures are collected, not raised."""
    when = now or datetime.now(UTC)
    limit = asyncio.Semaphore(CONCURRENCY)
    result = CollectResult()

    async def one(feed: FeedSource) -> None:
        async with limit:
            try:
                document = await fetcher.fetch(feed.url)
                result.articles.extend(parse_feed(document, feed, now=when))
            except FeedError as exc:
                result.errors[feed.url] = str(exc)

    await asyncio.gather(*(one(f) for f in feeds))
    return result


async def collect_into(
    pool: Pool, fetcher: FeedFetcher, feeds: Iterable[FeedSource]
) -> CollectResult:
    """``collect`` and store what was found in the news read model."""
    result = await collect(fetcher, feeds)
    if result.articles:
        await upsert_articles(pool, result.articles)
    return result
