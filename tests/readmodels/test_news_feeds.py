"""RSS/Atom parsing, and the collector against a local stub feed server (real HTTP): timeouts,
errors, size cap and redirects; one broken feed never stops the others."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from infra.importers.feed_parse import FeedError, FeedSource, parse_feed, plain_text
from infra.importers.feeds import (
    HttpFeedFetcher,
    MemoryFeedFetcher,
    collect,
    collect_into,
    feed_sources,
)
from infra.importers.news_files import read_news_file
from infra.importers.tabular import ImportReport
from readmodels import news
from tests.gateway.helpers import ServerThread

NOW = datetime(2025, 7, 1, tzinfo=UTC)

RSS = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel><title>환경 소식</title><link>https://feeds.example/</link>
<item><title>투명 페트병 별도 배출 확대</title><link>https://feeds.example/a/1</link>
  <description>&lt;p&gt;라벨을 &lt;b&gt;떼고&lt;/b&gt; 압착&lt;/p&gt;&lt;img src="https://img.example/1.jpg"&gt;</description>
  <pubDate>Mon, 30 Jun 2025 09:00:00 +0900</pubDate></item>
<item><title>탄소중립 정책 발표</title><link>https://feeds.example/a/2</link>
  <description>요약</description><dc:date>2025-06-29T10:00:00Z</dc:date>
  <media:thumbnail url="https://img.example/2.jpg"/></item>
<item><title>날짜 없는 글</title><guid>https://feeds.example/a/3</guid></item>
<item><title>링크 없는 글</title></item>
<item><title>위험한 링크</title><link>javascript:alert(1)</link></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Zero Waste Blog</title>
<entry><title>리필 상점 이용법</title>
  <link rel="self" href="https://blog.example/self"/>
  <link rel="alternate" href="https://blog.example/posts/refill"/>
  <published>2025-06-28T08:00:00+09:00</published><summary>빈 용기를 챙겨요</summary></entry>
<entry><title>Updated only</title><link href="https://blog.example/posts/u"/>
  <updated>2025-06-27T00:00:00Z</updated><content type="html">&lt;p&gt;본문&lt;/p&gt;</content></entry>
</feed>"""

RDF = """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
 xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://rdf.example/"><title>RDF 소식</title></channel>
<item rdf:about="https://rdf.example/1"><title>분리배출 요령</title>
 <link>https://rdf.example/1</link><dc:date>2025-06-01T00:00:00+09:00</dc:date></item>
</rdf:RDF>"""


def feed(url: str = "https://feeds.example/rss", category: str = "auto") -> FeedSource:
    return FeedSource(url=url, category=category, source="feeds.example")


def test_rss2() -> None:
    articles = parse_feed(RSS.encode(), feed(), now=NOW)
    assert [a.url for a in articles] == [
        "https://feeds.example/a/1", "https://feeds.example/a/2", "https://feeds.example/a/3"]
    first, second, third = articles
    assert first.snippet == "라벨을 떼고 압착"
    assert first.thumbnail_url == "https://img.example/1.jpg"
    assert first.published_at == datetime(2025, 6, 30, tzinfo=UTC)
    assert first.source_name == "환경 소식"  # the feed's own title
    assert first.category == "recycling"  # 'auto': by keywords
    assert second.category == "policy" and second.thumbnail_url == "https://img.example/2.jpg"
    assert second.published_at == datetime(2025, 6, 29, 10, tzinfo=UTC)
    assert third.published_at == NOW  # no date: the collection time
    assert first.id != second.id and first.id == news.article_id("https://feeds.example/a/1")


def test_atom_and_rdf() -> None:
    refill, updated = parse_feed(ATOM.encode(), feed(category="lifestyle"), now=NOW)
    assert refill.url == "https://blog.example/posts/refill"  # rel=alternate, not self
    assert refill.snippet == "빈 용기를 챙겨요" and refill.category == "lifestyle"
    assert refill.source_name == "Zero Waste Blog"
    assert updated.snippet == "본문"
    assert updated.published_at == datetime(2025, 6, 27, tzinfo=UTC)
    (rdf,) = parse_feed(RDF.encode(), feed(), now=NOW)
    assert rdf.title == "분리배출 요령" and rdf.source_name == "RDF 소식"


def test_entities_and_junk_are_refused() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><rss><channel/></rss>'
    with pytest.raises(FeedError):
        parse_feed(bomb, feed(), now=NOW)
    with pytest.raises(FeedError):
        parse_feed(b"<html><body>not a feed</body></html>", feed(), now=NOW)
    with pytest.raises(FeedError):
        parse_feed(b"<rss", feed(), now=NOW)
    assert plain_text("a" * 500).endswith("…") and len(plain_text("a" * 500)) == 200


def test_feed_setting_entries() -> None:
    feeds = feed_sources(["policy=https://me.example/rss", "https://blog.example/atom?x=1"])
    assert [(f.category, f.url, f.source) for f in feeds] == [
        ("policy", "https://me.example/rss", "me.example"),
        ("auto", "https://blog.example/atom?x=1", "blog.example"),
    ]
    with pytest.raises(ValueError):
        feed_sources(["sports=https://x.example/rss"])


async def test_memory_twin_collects_and_reports_missing() -> None:
    fetcher = MemoryFeedFetcher({"https://a.example/rss": RSS.encode()})
    result = await collect(fetcher, [feed("https://a.example/rss"), feed("https://b.example/x")],
                           now=NOW)
    assert len(result.articles) == 3
    assert result.errors == {"https://b.example/x": "HTTP 404"}


def stub_app() -> Starlette:
    async def rss(request: Request) -> Response:
        return Response(RSS, media_type="application/rss+xml")

    async def atom(request: Request) -> Response:
        return Response(ATOM, media_type="application/atom+xml")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(30)
        return Response(RSS, media_type="application/rss+xml")

    async def big(request: Request) -> Response:
        return Response(b"<rss>" + b" " * 50_000 + b"</rss>", media_type="application/xml")

    async def moved(request: Request) -> Response:
        return RedirectResponse("/atom", status_code=301)

    async def broken(request: Request) -> Response:
        return Response("oops", status_code=500)

    return Starlette(routes=[
        Route("/rss", rss), Route("/atom", atom), Route("/slow", slow), Route("/big", big),
        Route("/moved", moved), Route("/broken", broken), Route("/html", broken),
    ])


@pytest.fixture(scope="module")
def stub() -> Iterator[str]:
    with ServerThread(stub_app()) as server:
        yield server.url


async def test_collector_over_http(stub: str) -> None:
    feeds = [feed(f"{stub}/{name}") for name in ("rss", "moved", "slow", "big", "broken")]
    started = asyncio.get_running_loop().time()
    # 2 s: the prompt feeds must beat it on a loaded machine too; the slow one takes 30 s
    async with HttpFeedFetcher(timeout_s=2, max_bytes=10_000) as fetcher:
        result = await collect(fetcher, feeds, now=NOW)
    assert asyncio.get_running_loop().time() - started < 20  # the slow feed timed out
    assert sorted(a.url for a in result.articles) == sorted([
        "https://feeds.example/a/1", "https://feeds.example/a/2", "https://feeds.example/a/3",
        "https://blog.example/posts/refill", "https://blog.example/posts/u"])
    assert set(result.errors) == {f"{stub}/slow", f"{stub}/big", f"{stub}/broken"}
    assert "Timeout" in result.errors[f"{stub}/slow"]
    assert "larger" in result.errors[f"{stub}/big"]
    assert result.errors[f"{stub}/broken"] == "HTTP 500"


@pytest.mark.postgres
async def test_collect_into_the_read_model(stub: str, pool: asyncpg.Pool) -> None:
    stamps = []
    async with HttpFeedFetcher(timeout_s=2) as fetcher:
        for _ in range(2):  # collecting twice stores each article once
            result = await collect_into(pool, fetcher, [feed(f"{stub}/rss"), feed(f"{stub}/atom")])
            assert not result.errors
            page = await news.list_news(pool, limit=50)
            assert len(page.articles) == 5
            # the undated item carries its first collection time, then the dated ones
            assert [a.title for a in page.articles[:2]] == ["날짜 없는 글", "투명 페트병 별도 배출 확대"]
            stamps.append(page.articles[0].published_at)
            await asyncio.sleep(0.01)
    assert stamps[0] == stamps[1]


def test_offline_news_files(tmp_path: Path) -> None:
    xml = tmp_path / "saved.xml"
    xml.write_text(RSS, encoding="utf-8")
    report = ImportReport("news")
    assert len(read_news_file(xml, report, category="climate", source="me")) == 3
    data = tmp_path / "a.json"
    data.write_text(
        '{"articles": [{"title": "t", "url": "https://x.example/1", "category": "정책",'
        ' "published_at": "2025-01-02T03:04:05+09:00"}, {"title": "no url"},'
        ' {"title": "t2", "url": "https://x.example/2", "category": "sports",'
        ' "published_at": "2025-01-02"}]}', encoding="utf-8")
    report = ImportReport("news")
    (only,) = read_news_file(data, report)
    assert only.category == "policy" and not only.sample
    assert dict(report.skipped) == {"no title or http(s) url": 1, "unknown category": 1}


def test_auto_category_knows_the_pwa_energy_and_ai_tabs() -> None:
    from infra.importers.feed_parse import categorize

    assert categorize("태양광 발전소 준공, 재생에너지 비중 늘어") == "energy"
    assert categorize("AI가 전시장 안내를 돕는다") == "ai"
    assert categorize("인공지능 기반 수요 예측") == "ai"
    assert categorize("Thailand said the heatwave will continue") == "climate"  # no "ai" inside words
    assert categorize("페트병 분리배출 요령") == "recycling"
