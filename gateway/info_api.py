"""``GET /api/v1/info/news``: the info screen's articles, newest first, cursor-paginated;
``GET /api/v1/info/datasets``: which data behind the answers is real or sample, and its date."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.auth import current_user
from gateway.errors import InvalidRequest
from gateway.locations_api import QueryModel, database_errors, parse_query, read_pool
from readmodels import news
from readmodels.news import NEWS_CATEGORIES, Article, InvalidCursor

KST = timezone(timedelta(hours=9))


class NewsQuery(QueryModel):
    category: str | None = Field(default=None, max_length=50)
    cursor: str | None = Field(default=None, max_length=200)
    limit: int = Field(default=20, ge=1, le=news.MAX_PAGE)


def article_json(article: Article) -> dict[str, Any]:
    """The client's article object (API.md) plus ``category`` and ``sample``."""
    return {
        "id": article.id,
        "title": article.title,
        "url": article.url,
        "snippet": article.snippet,
        "source": article.source,
        "source_name": article.source_name,
        "published_at": article.published_at.astimezone(KST).isoformat(),
        "thumbnail_url": article.thumbnail_url,
        "category": article.category,
        "sample": article.sample,
    }


async def list_news(request: Request) -> JSONResponse:
    """Articles of one category (or all), ``limit`` per page, after ``cursor``."""
    await current_user(request)
    query = parse_query(request, NewsQuery)
    try:
        category = news.category_key(query.category)
    except ValueError as exc:
        raise InvalidRequest("category", str(exc)) from exc
    pool = read_pool(request)
    with database_errors():
        try:
            page = await news.list_news(
                pool, category=category, cursor=query.cursor or None, limit=query.limit
            )
        except InvalidCursor as exc:
            raise InvalidRequest("cursor", "not a cursor from a previous page") from exc
        counts = await news.category_counts(pool)
    return JSONResponse(
        {
            "articles": [article_json(a) for a in page.articles],
            "next_cursor": page.next_cursor,
            "has_more": page.has_more,
            "meta": {
                "category": category or "all",
                "limit": query.limit,
                "count": len(page.articles),
                "total": counts[category] if category else sum(counts.values()),
                "categories": [
                    {"key": key, "label": label, "count": counts[key]}
                    for key, label in NEWS_CATEGORIES.items()
                ],
                "sample": any(a.sample for a in page.articles),
            },
        }
    )


DATASETS_PATH = Path(__file__).resolve().parents[1] / "agents" / "data" / "datasets.json"


async def list_datasets(request: Request) -> JSONResponse:
    """Every dataset the answers rest on: ``sample`` (shipped synthetic data, labelled "(샘플)"
    wherever it is shown) or real, with its reference date and source."""
    await current_user(request)
    return JSONResponse(json.loads(DATASETS_PATH.read_text(encoding="utf-8")))
