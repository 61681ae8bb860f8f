"""Offline news import: a saved RSS/Atom document, or a JSON list of articles.

JSON shape (the shipped sample uses it)::

    {"sample": true, "articles": [{"title", "url", "snippet", "source", "source_name",
      "category", "published_at": "2025-03-02T09:00:00+09:00", "thumbnail_url"?}, ...]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.importers.feed_parse import FeedSource, parse_feed, parse_when, plain_text
from infra.importers.tabular import ImportReport, decode_bytes, find_records
from readmodels.news import Article, article_id, category_key


def article_from_json(raw: Mapping[str, Any], *, sample: bool) -> Article | str:
    """The article of one JSON object, or why it cannot be one."""
    title, url = str(raw.get("title") or "").strip(), str(raw.get("url") or "").strip()
    if not title or not url.startswith(("http://", "https://")):
        return "no title or http(s) url"
    when = parse_when(str(raw.get("published_at") or ""))
    if when is None:
        return "no published_at"
    try:
        category = category_key(str(raw.get("category") or "")) or "climate"
    except ValueError:
        return "unknown category"
    source = str(raw.get("source") or "import")
    thumbnail = raw.get("thumbnail_url")
    return Article(
        id=str(raw.get("id") or article_id(url)),
        title=title,
        url=url,
        snippet=plain_text(str(raw.get("snippet") or "")),
        source=source,
        source_name=str(raw.get("source_name") or source),
        category=category,
        published_at=when,
        thumbnail_url=str(thumbnail) if thumbnail else None,
        sample=sample or bool(raw.get("sample")),
    )


def read_news_file(
    path: Path, report: ImportReport, *, category: str = "auto", source: str | None = None
) -> list[Article]:
    """The articles of ``path`` (``.json``, or RSS/Atom XML for any other suffix)."""
    if path.suffix.lower() == ".json":
        data = json.loads(decode_bytes(path.read_bytes()))
        sample = isinstance(data, dict) and data.get("sample") is True
        records = find_records(data.get("articles", data) if isinstance(data, dict) else data)
        return list(report.kept(article_from_json(raw, sample=sample) for raw in records))
    feed = FeedSource(url=f"https://{source or path.stem}.invalid/", category=category,
                      source=source or path.stem)
    found = parse_feed(path.read_bytes(), feed, now=datetime.now(UTC))
    report.read += len(found)
    return found
