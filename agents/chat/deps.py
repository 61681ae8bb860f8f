"""What the chat graph is built from: its ports, one field each (``ChatDeps``), and a factory for
the offline set (sample data, local adapters) that tests and ``eco2 up`` without keys use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agents.chat.intents import IntentClassifier, LocalIntentClassifier
from agents.chat.media import ChatMedia, InMemoryChatMedia
from agents.chat.policies import POLICIES, Clock, NodePolicy, SystemClock
from agents.chat.subagents.bulk_waste_data import BulkWasteFees, InMemoryBulkWasteFees
from agents.chat.subagents.character import ItemMatcher
from agents.chat.subagents.image_generation import ImageGenerator, InfoCardRenderer
from agents.chat.subagents.places import InMemoryLocations, LocationsPort
from agents.chat.subagents.recyclable_price_data import (
    InMemoryRecyclablePrices,
    RecyclablePrices,
)
from agents.chat.subagents.waste_rag import DisposalKnowledge, LocalKnowledge
from agents.chat.subagents.weather import OfflineWeather, WeatherPort
from agents.chat.subagents.web_search import OfflineWebSearch, WebSearchPort
from agents.knowledge import KnowledgeBase
from agents.llm.local import LocalLLM
from agents.llm.ports import LLM, Vision
from characters import CharacterService, InMemoryCharacters


class Knowledge(DisposalKnowledge, ItemMatcher, Protocol):
    """The knowledge base as the chat uses it (``KnowledgeBase`` implements it)."""


@dataclass(frozen=True)
class ChatDeps:
    """The ports of the chat graph. ``llm`` is normally the ``ModelRouter``. A turn whose model
    (its ``model``, else ``default_model``) is served by a remote provider is classified by
    ``LLMIntentClassifier`` on that model when ``classify_with_llm`` is on, falling back to
    ``intents`` (the local classifier) when the provider fails. ``vision`` reads chat images
    (None: images are not classified)."""

    llm: LLM
    kb: Knowledge
    characters: CharacterService
    locations: LocationsPort
    bulk_waste: BulkWasteFees
    prices: RecyclablePrices
    weather: WeatherPort
    web_search: WebSearchPort
    image_gen: ImageGenerator
    media: ChatMedia
    intents: IntentClassifier
    clock: Clock = field(default_factory=SystemClock)
    vision: Vision | None = None
    classify_with_llm: bool = True
    default_model: str = "local"
    policies: Mapping[str, NodePolicy] = field(default_factory=lambda: dict(POLICIES))


def offline_chat_deps(
    kb: KnowledgeBase | None = None,
    *,
    llm: LLM | None = None,
    vision: Vision | None = None,
    characters: CharacterService | None = None,
    media: ChatMedia | None = None,
    intents: IntentClassifier | None = None,
    clock: Clock | None = None,
    default_model: str = "local",
) -> ChatDeps:
    """Every data source offline (shipped samples; no weather or web search), the local intent
    classifier, and the given model ports (``llm`` default: the local LLM). ``default_model``
    is the deployment's model (settings ``ECO2_MODEL``): remote ones classify intents with the
    LLM. Live sources: ``agents.chat.live.live_sources``."""
    kb = kb or KnowledgeBase.load()
    return ChatDeps(
        llm=llm or LocalLLM(kb),
        kb=LocalKnowledge(kb),
        characters=characters or InMemoryCharacters(kb.characters()),
        locations=InMemoryLocations.from_sample(),
        bulk_waste=InMemoryBulkWasteFees.from_sample(),
        prices=InMemoryRecyclablePrices.from_sample(),
        weather=OfflineWeather(),
        web_search=OfflineWebSearch(),
        image_gen=InfoCardRenderer(),
        media=media or InMemoryChatMedia(),
        intents=intents or LocalIntentClassifier(),
        clock=clock or SystemClock(),
        vision=vision,
        default_model=default_model,
    )
