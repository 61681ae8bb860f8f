"""What every subagent is given and what it hands back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agents.chat.turn import GeoPoint, HistoryItem

_FROZEN = ConfigDict(frozen=True)


class SubTask(BaseModel):
    """One sub-query routed to one stage (the payload of a ``Send``)."""

    model_config = _FROZEN

    stage: str
    intent: str
    query: str  # the sub-query's own words
    message: str  # the whole user message (some answers need the other half)
    location: GeoPoint | None = None
    history: list[HistoryItem] = Field(default_factory=list)
    model: str | None = None
    item_hint: str | None = None  # what the chat image shows (vision), e.g. "투명 페트병"
    enrichment: bool = False  # added by the graph (weather next to a waste answer), not asked


class Finding(BaseModel):
    """A subagent's contribution to the answer.

    ``found`` says whether the intent's required context is there (else the fallback chain
    runs); ``text`` is a Korean section the answer quotes, grounded in ``sources``;
    ``detail`` is small and JSON-able (it goes into progress events).
    """

    model_config = _FROZEN

    stage: str
    found: bool
    text: str = ""
    title: str | None = None
    sources: list[dict[str, Any]] = Field(default_factory=list)
    detail: dict[str, Any] = Field(default_factory=dict)


def not_found(stage: str, **detail: Any) -> Finding:
    """A finding without the required context (the fallback chain takes over)."""
    return Finding(stage=stage, found=False, detail=detail)
