"""``web_search``: recent news and policy from the web (also the fallback chain's second step).

Adapters: ``OfflineWebSearch`` (not configured: the fallback chain moves on) and
``KakaoWebSearch`` (Daum web search, ``GET /v2/search/web`` with the Kakao REST key).
"""

from __future__ import annotations

import html
import re
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from agents.chat.errors import SourceBadData, SourceNotConfigured
from agents.chat.http import HttpSource, as_dict, as_list
from agents.chat.subagents.base import Finding, SubTask, not_found

STAGE = "web_search"
LIMIT = 3
_TAGS = re.compile(r"<[^>]+>")


class SearchHit(BaseModel):
    model_config = ConfigDict(frozen=True)

    title: str
    url: str
    snippet: str = ""
    published_at: str | None = None


class WebSearchPort(Protocol):
    async def search(self, query: str, limit: int) -> list[SearchHit]:
        """Web results for ``query``, best first; ``SourceNotConfigured`` when there is none."""
        ...


class OfflineWebSearch:
    async def search(self, query: str, limit: int) -> list[SearchHit]:
        raise SourceNotConfigured("web_search: no search service is configured (offline)")


def plain(text: str) -> str:
    """Search snippets come with <b> highlights and HTML entities."""
    return " ".join(html.unescape(_TAGS.sub("", text)).split())


class KakaoWebSearch(HttpSource):
    """``WebSearchPort`` on Daum web search (Kakao REST key)."""

    name = "kakao-web-search"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://dapi.kakao.com",
        timeout_s: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout_s=timeout_s,
            headers={"Authorization": f"KakaoAK {api_key}"},
            transport=transport,
        )

    async def search(self, query: str, limit: int) -> list[SearchHit]:
        """See ``WebSearchPort.search`` (Kakao allows 1..50 results per page)."""
        body = await self.get_json(
            "/v2/search/web",
            {"query": query, "size": min(max(limit, 1), 50), "sort": "accuracy"},
        )
        hits = []
        for doc in as_list(as_dict(body, "search reply").get("documents"), "search documents"):
            doc = as_dict(doc, "search document")
            try:
                hits.append(
                    SearchHit(
                        title=plain(str(doc["title"])),
                        url=str(doc["url"]),
                        snippet=plain(str(doc.get("contents") or "")),
                        published_at=str(doc.get("datetime") or "") or None,
                    )
                )
            except KeyError as exc:
                raise SourceBadData(f"{self.name}: document without {exc}") from exc
        return hits[:limit]


async def run(task: SubTask, search: WebSearchPort) -> Finding:
    """The top web results for the sub-query, quoted with their links."""
    hits = await search.search(task.query, LIMIT)
    if not hits:
        return not_found(STAGE, results=0)
    lines = ["웹에서 찾은 내용이에요 (자세한 내용과 최신 여부는 원문에서 확인해 주세요):"]
    for n, hit in enumerate(hits, start=1):
        snippet = f" — {hit.snippet[:160]}" if hit.snippet else ""
        lines.append(f"{n}. {hit.title}{snippet} ({hit.url})")
    return Finding(
        stage=STAGE,
        found=True,
        title="웹 검색 결과",
        text="\n".join(lines),
        sources=[{"type": "web", "title": h.title, "url": h.url} for h in hits],
        detail={"results": len(hits)},
    )
