"""The news read model: cursor pages without gaps or repeats, categories, bad cursors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from readmodels import news
from readmodels.news import Article, InvalidCursor, article_id, category_key

pytestmark = [pytest.mark.postgres]

START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CATEGORIES = list(news.NEWS_CATEGORIES)


def article(i: int, *, same_time: bool = False) -> Article:
    url = f"https://news.example/{i}"
    return Article(
        id=article_id(url), title=f"기사 {i}", url=url, snippet="…", source="test",
        source_name="테스트", category=CATEGORIES[i % len(CATEGORIES)],
        published_at=START if same_time else START - timedelta(hours=i),
    )


async def all_pages(pool: asyncpg.Pool, limit: int, category: str | None = None) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = await news.list_news(pool, category=category, cursor=cursor, limit=limit)
        seen += [a.id for a in page.articles]
        assert page.has_more == (page.next_cursor is not None)
        if not page.has_more:
            return seen
        cursor = page.next_cursor


async def test_pages_cover_everything_once_newest_first(pool: asyncpg.Pool) -> None:
    items = [article(i) for i in range(23)] + [article(100 + i, same_time=True) for i in range(7)]
    await news.upsert_articles(pool, items)
    expected = [a.id for a in sorted(items, key=lambda a: (a.published_at, a.id), reverse=True)]
    for limit in (1, 4, 7, 50):
        assert await all_pages(pool, limit) == expected  # ties at one instant split cleanly
    recycling = await all_pages(pool, 3, "recycling")
    assert recycling == [i for i in expected
                         if next(a for a in items if a.id == i).category == "recycling"]
    assert recycling == await all_pages(pool, 3, "분리배출·재활용")  # the Korean label works


async def test_new_articles_do_not_shift_a_cursor(pool: asyncpg.Pool) -> None:
    await news.upsert_articles(pool, [article(i) for i in range(10)])
    first = await news.list_news(pool, limit=4)
    await news.upsert_articles(pool, [article(-5)])  # newer than everything
    second = await news.list_news(pool, cursor=first.next_cursor, limit=4)
    assert [a.title for a in second.articles] == ["기사 4", "기사 5", "기사 6", "기사 7"]


async def test_bad_cursors_and_categories(pool: asyncpg.Pool) -> None:
    for bad in ("abc", "!!!", base64.urlsafe_b64encode(b'["x", 1]').decode(),
                base64.urlsafe_b64encode(b'["2025-01-01T00:00:00", "n1"]').decode()):
        with pytest.raises(InvalidCursor):
            await news.list_news(pool, cursor=bad)
    with pytest.raises(ValueError):
        category_key("sports")
    assert category_key("all") is None and category_key(None) is None
    with pytest.raises(ValueError):
        await news.list_news(pool, limit=51)


async def test_upsert_is_idempotent_and_counts_and_prune(pool: asyncpg.Pool) -> None:
    items = [article(i) for i in range(8)]
    assert await news.upsert_articles(pool, items + items[:3]) == 8
    await news.upsert_articles(pool, items)
    counts = await news.category_counts(pool)
    assert sum(counts.values()) == 8 and set(counts) == set(news.NEWS_CATEGORIES)
    assert await news.prune_news(pool, keep=5) == 3
    assert [a.title for a in (await news.list_news(pool, limit=50)).articles] == [
        f"기사 {i}" for i in range(5)]


def test_articles_are_validated() -> None:
    with pytest.raises(ValueError):
        Article(id="x", title="t", url="u", snippet="", source="s", source_name="s",
                category="sports", published_at=START)
    with pytest.raises(ValueError):
        Article(id="x", title="t", url="u", snippet="", source="s", source_name="s",
                category="policy", published_at=datetime(2025, 1, 1))
