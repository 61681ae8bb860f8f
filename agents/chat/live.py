"""Swapping the offline data sources for live adapters, one per configured key.

``live_sources(deps, LiveSources(...))`` is an async context manager yielding ``deps`` with
every source whose key is set replaced by its live adapter (and closing those adapters on
exit); a source without a key keeps its offline adapter. Bootstrap maps settings to
``LiveSources``; nothing here reads the environment.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from agents.chat.deps import ChatDeps
from agents.chat.subagents.bulk_waste_data import DataGoKrBulkWasteFees
from agents.chat.subagents.image_generation import GeminiImageGenerator
from agents.chat.subagents.places import KakaoLocalLocations
from agents.chat.subagents.recyclable_price_data import DataGoKrRecyclablePrices
from agents.chat.subagents.weather import KmaWeather
from agents.chat.subagents.web_search import KakaoWebSearch


@dataclass(frozen=True)
class LiveSources:
    """Keys and endpoints of the live data sources (None: keep the offline adapter)."""

    kakao_rest_key: str | None = None  # Kakao Local (places) and Daum web search
    kakao_base_url: str = "https://dapi.kakao.com"
    use_kakao_places: bool = True  # False: keep ``deps.locations`` (e.g. the Postgres read model)
    data_go_kr_key: str | None = None  # 공공데이터포털 serviceKey: fees, prices, weather
    data_go_kr_base_url: str = "https://apis.data.go.kr"
    bulk_waste_base_url: str = "https://api.data.go.kr"
    gemini_api_key: str | None = None  # image generation
    gemini_base_url: str | None = None
    image_model: str = "gemini-2.5-flash-image"


@asynccontextmanager
async def live_sources(deps: ChatDeps, sources: LiveSources) -> AsyncIterator[ChatDeps]:
    """``deps`` with the live adapters of every configured source; closes them on exit."""
    async with AsyncExitStack() as stack:
        changes: dict[str, Any] = {}
        if sources.kakao_rest_key:
            key, base = sources.kakao_rest_key, sources.kakao_base_url
            if sources.use_kakao_places:
                changes["locations"] = await stack.enter_async_context(
                    KakaoLocalLocations(key, base_url=base)
                )
            changes["web_search"] = await stack.enter_async_context(
                KakaoWebSearch(key, base_url=base)
            )
        if sources.data_go_kr_key:
            key = sources.data_go_kr_key
            changes["bulk_waste"] = await stack.enter_async_context(
                DataGoKrBulkWasteFees(key, base_url=sources.bulk_waste_base_url)
            )
            changes["prices"] = await stack.enter_async_context(
                DataGoKrRecyclablePrices(key, base_url=sources.data_go_kr_base_url)
            )
            changes["weather"] = await stack.enter_async_context(
                KmaWeather(key, base_url=sources.data_go_kr_base_url)
            )
        if sources.gemini_api_key:
            generator = GeminiImageGenerator(
                sources.gemini_api_key, base_url=sources.gemini_base_url, model=sources.image_model
            )
            stack.push_async_callback(generator.aclose)
            changes["image_gen"] = generator
        yield dataclasses.replace(deps, **changes)
