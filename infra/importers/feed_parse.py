"""RSS 2.0, RSS 1.0 (RDF) and Atom documents → ``Article`` rows (pure; no I/O).

Parsed with ``xml.etree``; documents declaring entities are refused outright (no legitimate
news feed needs them, and it closes the entity-expansion door whatever the expat version).
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from readmodels.news import NEWS_CATEGORIES, Article, article_id

KST = timezone(timedelta(hours=9))
SNIPPET_CHARS = 200
ATOM = "{http://www.w3.org/2005/Atom}"
RSS1 = "{http://purl.org/rss/1.0/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
DC = "{http://purl.org/dc/elements/1.1/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"

# Keywords deciding the category of articles from feeds configured as 'auto', in priority order.
_CATEGORY_WORDS = (
    ("recycling", ("분리배출", "재활용", "분리수거", "페트병", "폐기물", "recycl")),
    ("lifestyle", ("제로웨이스트", "다회용", "텀블러", "리필", "업사이클", "zero waste")),
    ("policy", ("정책", "법", "규제", "제도", "시행", "개정", "환경부", "policy", "regulation")),
    ("energy", ("에너지", "태양광", "풍력", "전력", "수소", "energy", "solar")),
    ("ai", ("인공지능", "생성형", "챗봇")),
    ("climate", ("기후", "탄소", "온실가스", "폭염", "미세먼지", "climate", "carbon")),
)


class FeedError(ValueError):
    """The document is not a feed we can read."""


@dataclass(frozen=True)
class FeedSource:
    """One configured feed: where, which category its articles go to ('auto': by keywords),
    and the names shown (``source_name`` None → the feed's own title)."""

    url: str
    category: str
    source: str
    source_name: str | None = None

    def __post_init__(self) -> None:
        if self.category != "auto" and self.category not in NEWS_CATEGORIES:
            raise ValueError(f"feed category {self.category!r} is not 'auto' or a known one")
        if urlsplit(self.url).scheme not in ("http", "https"):
            raise ValueError(f"feed url must be http(s): {self.url!r}")


# "AI" as a word of its own ("AI가", "AI 분류"), not inside "said" or "Thailand".
_WORD_PATTERNS = {"ai": re.compile(r"(?<![a-z])ai(?![a-z])")}


def categorize(text: str, default: str = "climate") -> str:
    lowered = text.lower()
    for category, words in _CATEGORY_WORDS:
        pattern = _WORD_PATTERNS.get(category)
        if any(w in lowered for w in words) or (pattern and pattern.search(lowered)):
            return category
    return default


_TAG = re.compile(r"<[^>]*>")
_IMG = re.compile(r"""<img[^>]+src=["']([^"']+)["']""", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def plain_text(markup: str | None, limit: int = SNIPPET_CHARS) -> str:
    """HTML → one line of text, cut at ``limit`` characters with an ellipsis."""
    if not markup:
        return ""
    text = _SPACE.sub(" ", html.unescape(_TAG.sub(" ", markup))).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _http(url: str | None) -> str | None:
    if not url:
        return None
    url = url.strip()
    return url if urlsplit(url).scheme in ("http", "https") and urlsplit(url).netloc else None


def parse_when(text: str | None) -> datetime | None:
    """RFC 822 (RSS) or ISO 8601 (Atom, dc:date); no zone means Korean time."""
    if not text or not text.strip():
        return None
    text = text.strip()
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return when if when.tzinfo is not None else when.replace(tzinfo=KST)


def _text(element: ET.Element | None, path: str) -> str | None:
    found = None if element is None else element.find(path)
    return None if found is None or found.text is None else found.text.strip()


def _thumbnail(item: ET.Element, description: str | None) -> str | None:
    for tag in (f"{MEDIA}thumbnail", f"{MEDIA}content", "enclosure"):
        for node in item.iter(tag):
            kind = node.get("type", "") or node.get("medium", "")
            if tag != f"{MEDIA}thumbnail" and kind and "image" not in kind:
                continue
            url = _http(node.get("url"))
            if url:
                return url
    match = _IMG.search(description or "")
    return _http(html.unescape(match[1])) if match else None


def parse_feed(document: bytes, feed: FeedSource, *, now: datetime) -> list[Article]:
    """Every article of ``document`` that has a title and an http(s) link. Items without a
    date get ``now`` (the collection time)."""
    if re.search(rb"<!ENTITY", document, re.IGNORECASE):
        raise FeedError("feeds declaring XML entities are refused")
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise FeedError(f"not well-formed XML: {exc}") from exc
    if root.tag == f"{ATOM}feed":
        title = _text(root, f"{ATOM}title")
        entries = [_atom_entry(e) for e in root.findall(f"{ATOM}entry")]
    elif root.tag == "rss":
        channel = root.find("channel")
        title = _text(channel, "title")
        entries = [_rss_item(i) for i in (channel.findall("item") if channel is not None else [])]
    elif root.tag == f"{RDF}RDF":
        title = _text(root.find(f"{RSS1}channel"), f"{RSS1}title")
        entries = [_rss1_item(i) for i in root.findall(f"{RSS1}item")]
    else:
        raise FeedError(f"not an RSS or Atom document (root element {root.tag!r})")
    source_name = feed.source_name or title or feed.source
    articles = []
    for entry_title, link, body, when, thumb in entries:
        url = _http(link)
        if not entry_title or url is None:
            continue
        snippet = plain_text(body)
        category = (
            categorize(f"{entry_title} {snippet}") if feed.category == "auto" else feed.category
        )
        articles.append(
            Article(
                id=article_id(url), title=plain_text(entry_title, 300), url=url, snippet=snippet,
                source=feed.source, source_name=source_name, category=category,
                published_at=when or now, thumbnail_url=thumb,
            )
        )
    return articles


_Entry = tuple[str | None, str | None, str | None, datetime | None, str | None]


def _rss_item(item: ET.Element) -> _Entry:
    body = _text(item, "description") or _text(item, f"{CONTENT}encoded")
    link = _text(item, "link")
    guid = item.find("guid")
    if not link and guid is not None and guid.get("isPermaLink", "true") != "false":
        link = (guid.text or "").strip()
    when = parse_when(_text(item, "pubDate") or _text(item, f"{DC}date"))
    return _text(item, "title"), link, body, when, _thumbnail(item, body)


def _rss1_item(item: ET.Element) -> _Entry:
    body = _text(item, f"{RSS1}description")
    link = _text(item, f"{RSS1}link") or item.get(f"{RDF}about")
    when = parse_when(_text(item, f"{DC}date"))
    return _text(item, f"{RSS1}title"), link, body, when, _thumbnail(item, body)


def _atom_entry(entry: ET.Element) -> _Entry:
    link = None
    for node in entry.findall(f"{ATOM}link"):
        if node.get("rel", "alternate") == "alternate":
            link = node.get("href")
            break
    body = _text(entry, f"{ATOM}summary") or _text(entry, f"{ATOM}content")
    when = parse_when(_text(entry, f"{ATOM}published") or _text(entry, f"{ATOM}updated"))
    return _text(entry, f"{ATOM}title"), link, body, when, _thumbnail(entry, body)
