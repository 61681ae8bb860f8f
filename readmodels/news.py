"""The ``news_articles`` read model: articles for the info screen, newest first, by category.

Pages are cursor-based on (published_at, id) — stable while new articles arrive, unlike
offsets. The cursor is opaque to clients (base64url of the last row's key).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import asyncpg

    from readmodels.db import Conn, Pool

    Executor: TypeAlias = Pool | Conn

NEWS_CATEGORIES: dict[str, str] = {
    "recycling": "분리배출·재활용",
    "policy": "정책·제도",
    "climate": "기후·환경",
    "lifestyle": "제로웨이스트·생활",
    "energy": "에너지",
    "ai": "AI·기술",
}
# The Eco² PWA's tabs (its ``category`` values) and the categories each one shows.
PWA_CATEGORIES: dict[str, tuple[str, ...]] = {
    "environment": ("recycling", "policy", "climate", "lifestyle"),
    "energy": ("energy",),
    "ai": ("ai",),
}
_CATEGORY_ALIASES = {label: key for key, label in NEWS_CATEGORIES.items()} | {
    "재활용": "recycling", "분리배출": "recycling", "정책": "policy", "제도": "policy",
    "기후": "climate", "환경": "climate", "제로웨이스트": "lifestyle", "생활": "lifestyle",
    "인공지능": "ai", "AI": "ai",
}
_ALL = {"", "all", "전체"}
MAX_PAGE = 50


class InvalidCursor(ValueError):
    """A cursor that this service did not hand out."""


def category_key(value: str | None) -> str | None:
    """The category key for ``value`` (a key or its Korean label); None means all.
    Raises ``ValueError`` for an unknown category."""
    if value is None or value.strip().lower() in _ALL:
        return None
    text = value.strip()
    if text.lower() in NEWS_CATEGORIES:
        return text.lower()
    if text in _CATEGORY_ALIASES:
        return _CATEGORY_ALIASES[text]
    raise ValueError(f"unknown category {value!r}; use one of {', '.join(NEWS_CATEGORIES)}")


def category_filter(value: str | None) -> tuple[str, ...] | None:
    """The stored categories a ``category`` query shows: one of ours (a key or its label) or
    one of the PWA's tabs (``environment`` = every environment topic); None means all.
    Raises ``ValueError`` for an unknown category."""
    if value is not None and value.strip().lower() in PWA_CATEGORIES:
        return PWA_CATEGORIES[value.strip().lower()]
    try:
        key = category_key(value)
    except ValueError:
        known = ", ".join([*PWA_CATEGORIES, *NEWS_CATEGORIES])
        raise ValueError(f"unknown category {value!r}; use all or one of {known}") from None
    return None if key is None else (key,)


def pwa_category(category: str) -> str:
    """The PWA tab an article of ``category`` belongs to."""
    return next((tab for tab, keys in PWA_CATEGORIES.items() if category in keys), "environment")


def article_id(url: str) -> str:
    """A stable id for the article at ``url`` (the same link collected twice is one row)."""
    return "n" + hashlib.sha256(url.strip().encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    url: str
    snippet: str
    source: str
    source_name: str
    category: str
    published_at: datetime  # timezone-aware
    thumbnail_url: str | None = None
    sample: bool = False

    def __post_init__(self) -> None:
        if self.category not in NEWS_CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")
        if self.published_at.tzinfo is None:
            raise ValueError("published_at must be timezone-aware")


@dataclass(frozen=True)
class NewsPage:
    articles: list[Article]
    next_cursor: str | None
    has_more: bool


def encode_cursor(article: Article) -> str:
    raw = json.dumps([article.published_at.isoformat(), article.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(published_at, id) of a cursor; ``InvalidCursor`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, key = json.loads(raw)
        when = datetime.fromisoformat(stamp)
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("cursor is not valid") from exc
    if when.tzinfo is None or not isinstance(key, str):
        raise InvalidCursor("cursor is not valid")
    return when, key


def _article(row: asyncpg.Record) -> Article:
    return Article(**dict(row))


_COLUMNS = (
    "id, title, url, snippet, source, source_name, category, published_at, thumbnail_url, sample"
)


async def list_news(
    db: Executor, *, category: str | None = None, cursor: str | None = None, limit: int = 20
) -> NewsPage:
    """A page of articles, newest first, after ``cursor`` (from the previous page);
    ``category`` as ``category_filter`` reads it."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be in 1..{MAX_PAGE}")
    keys = category_filter(category)
    after: tuple[datetime, str] | None = decode_cursor(cursor) if cursor else None
    rows = await db.fetch(
        f"SELECT {_COLUMNS} FROM news_articles"
        " WHERE ($1::text[] IS NULL OR category = ANY($1::text[]))"
        "   AND ($2::timestamptz IS NULL OR (published_at, id) < ($2, $3::text))"
        " ORDER BY published_at DESC, id DESC LIMIT $4",
        list(keys) if keys is not None else None,
        after[0] if after else None, after[1] if after else None, limit + 1,
    )
    articles = [_article(r) for r in rows[:limit]]
    has_more = len(rows) > limit
    return NewsPage(articles, encode_cursor(articles[-1]) if has_more else None, has_more)


async def category_counts(db: Executor) -> dict[str, int]:
    """How many articles each category holds (categories with none included, as 0)."""
    rows = await db.fetch("SELECT category, count(*) AS n FROM news_articles GROUP BY category")
    counts = dict.fromkeys(NEWS_CATEGORIES, 0)
    counts.update({r["category"]: int(r["n"]) for r in rows})
    return counts


_UPSERT = (
    f"INSERT INTO news_articles ({_COLUMNS}, collected_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())"
    " ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, snippet = EXCLUDED.snippet,"
    " source = EXCLUDED.source, source_name = EXCLUDED.source_name,"
    " category = EXCLUDED.category,"
    # An undated item is stamped with its collection time: keep the first, so collecting
    # again does not push it back to the top of the feed.
    " published_at = LEAST(news_articles.published_at, EXCLUDED.published_at),"
    " thumbnail_url = EXCLUDED.thumbnail_url, sample = EXCLUDED.sample,"
    " collected_at = EXCLUDED.collected_at"
)


def _row(a: Article) -> tuple[Any, ...]:
    return (
        a.id, a.title, a.url, a.snippet, a.source, a.source_name, a.category, a.published_at,
        a.thumbnail_url, a.sample,
    )


async def upsert_articles(pool: Pool, articles: Iterable[Article]) -> int:
    """Insert or update ``articles`` in one transaction; returns how many were written."""
    unique = {a.id: a for a in articles}
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(_UPSERT, [_row(a) for a in unique.values()])
    return len(unique)


async def prune_news(pool: Pool, *, keep: int) -> int:
    """Delete all but the newest ``keep`` articles; returns how many were deleted."""
    async with pool.acquire() as conn:
        status = await conn.execute(
            "DELETE FROM news_articles WHERE id IN (SELECT id FROM news_articles"
            " ORDER BY published_at DESC, id DESC OFFSET $1)",
            keep,
        )
    return int(status.split()[-1])
