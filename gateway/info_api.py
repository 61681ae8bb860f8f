"""``GET /api/v1/info/news``: the info screen's articles, newest first, cursor-paginated."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth import current_user
from gateway.errors import InvalidRequest
from gateway.locations_api import QueryModel, database_errors, parse_query, read_pool
from readmodels import news
from readmodels.news import NEWS_CATEGORIES, PWA_CATEGORIES, Article, InvalidCursor, pwa_category

KST = timezone(timedelta(hours=9))
# API.md's article ``source`` is the PWA's news provider: naver, or newsdata for any other feed.
NAVER_HOSTS = ("naver.com", "naver.net")


class NewsQuery(QueryModel):
    category: str | None = Field(default=None, max_length=50)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=news.MAX_PAGE)


def news_provider(source: str) -> str:
    """``naver`` for articles collected from Naver, else ``newsdata``."""
    host = source.lower()
    return "naver" if host == "naver" or host.endswith(NAVER_HOSTS) else "newsdata"


def article_json(article: Article) -> dict[str, Any]:
    """The client's article object (API.md: ``category`` is the PWA's tab, unknown fields
    null) plus our ``topic``, the feed it came from (``feed``) and ``sample``."""
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "snippet": article.snippet,
        "source": news_provider(article.source),
        "source_name": article.source_name,
        "published_at": article.published_at.astimezone(KST).isoformat(),
        "thumbnail_url": article.thumbnail_url,
        "category": pwa_category(article.category),
        "source_icon_url": None,
        "video_url": None,
        "keywords": None,
        "ai_tag": None,
        # extras
        "topic": article.category,
        "topic_label": NEWS_CATEGORIES[article.category],
        "feed": article.source,
        "sample": article.sample,
    }


async def list_news(request: Request) -> JSONResponse:
    """Articles of one category (or all), ``limit`` per page, after ``cursor``."""
    await current_user(request)
    query = parse_query(request, NewsQuery)
    try:
        keys = news.category_filter(query.category)
    except ValueError as exc:
        raise InvalidRequest("category", str(exc)) from exc
    category = _category_name(query.category, keys)
    pool = read_pool(request)
    with database_errors():
        try:
            page = await news.list_news(
                pool, category=query.category, cursor=query.cursor or None, limit=query.limit
            )
        except InvalidCursor as exc:
            raise InvalidRequest("cursor", "not a cursor from a previous page") from exc
        counts = await news.category_counts(pool)
    total = sum(counts[k] for k in keys) if keys is not None else sum(counts.values())
    return JSONResponse(
        {
            "articles": [article_json(a) for a in page.articles],
            "next_cursor": page.next_cursor,
            "has_more": page.has_more,
            "meta": {
                "total_cached": total,
                "cache_expires_in": 0,  # collected articles are served from Postgres, not a cache
                "category": category,
                "limit": query.limit,
                "count": len(page.articles),
                "total": total,
                "categories": [
                    {"key": key, "label": label, "count": counts[key]}
                    for key, label in NEWS_CATEGORIES.items()
                ],
                "sample": any(a.sample for a in page.articles),
            },
        }
    )


def _category_name(given: str | None, keys: tuple[str, ...] | None) -> str:
    """How ``meta.category`` names the query: ``all``, a PWA tab, or one of our keys."""
    if keys is None:
        return "all"
    tab = (given or "").strip().lower()
    return tab if tab in PWA_CATEGORIES else keys[0]
