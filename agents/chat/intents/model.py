"""Result types of intent classification: the 10 chat intents and a turn's decision."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Intent(StrEnum):
    """What a (sub-)question asks for; each non-general intent has its own subagent."""

    WASTE = "waste"
    CHARACTER = "character"
    LOCATION = "location"
    BULK_WASTE = "bulk_waste"
    RECYCLABLE_PRICE = "recyclable_price"
    COLLECTION_POINT = "collection_point"
    WEATHER = "weather"
    IMAGE_GENERATION = "image_generation"
    WEB_SEARCH = "web_search"
    GENERAL = "general"


class SubQuery(BaseModel):
    """One part of a user message, routed to one subagent."""

    model_config = ConfigDict(frozen=True)

    intent: Intent
    text: str
    confidence: float = Field(ge=0.0, le=1.0)


class IntentDecision(BaseModel):
    """The classifier's answer for one message: its sub-queries in message order."""

    model_config = ConfigDict(frozen=True)

    sub_queries: list[SubQuery] = Field(min_length=1)
    primary: Intent
    is_multi: bool

    @property
    def intents(self) -> frozenset[Intent]:
        """The exact set of intents the message asks for (what accuracy is measured on)."""
        return frozenset(sq.intent for sq in self.sub_queries)

    @property
    def ordered_intents(self) -> list[Intent]:
        """Distinct intents in the order the user asked for them."""
        seen: list[Intent] = []
        for sq in self.sub_queries:
            if sq.intent not in seen:
                seen.append(sq.intent)
        return seen


class ScoreBreakdown(BaseModel):
    """How one intent's final confidence was built (for debugging and tests)."""

    model_config = ConfigDict(frozen=True)

    intent: Intent
    model: float
    keyword_hits: tuple[str, ...] = ()
    keyword_boost: float = 0.0
    transition_bonus: float = 0.0
    short_penalty: float = 0.0
    final: float = 0.0
