"""The contract between the chat handler and the chat graph: one turn's input and the updates
``ChatGraph.run`` yields (``ChatGraph.run_into`` puts the same ones).

A run yields, in order: ``NodeUpdate``s (stage progress, stage names as API.md), ``Token``s
(answer deltas, node ``answer``) and ends with exactly one ``TurnResult`` — or with one
``NeedsInput`` (a location-dependent question without a location: the turn stops there and the
handler re-runs the whole turn once the location arrives) — or raises ``TurnAborted`` (a CLOSE
node failed; its ``message`` is readable Korean). The concatenated ``Token.content`` of a run
equals ``TurnResult.answer``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.chat.errors import TurnAborted

__all__ = [
    "STAGES",
    "ChatUpdate",
    "GeoPoint",
    "HistoryItem",
    "NeedsInput",
    "NodeStatus",
    "NodeUpdate",
    "Token",
    "TurnAborted",
    "TurnInput",
    "TurnResult",
]

_FROZEN = ConfigDict(frozen=True)

# Progress stages of a chat turn, named as the SSE events of API.md.
STAGES = (
    "intent",
    "vision",
    "waste_rag",
    "character",
    "location",
    "bulk_waste",
    "weather",
    "collection_point",
    "recyclable_price",
    "web_search",
    "image_generation",
    "general",
    "aggregator",
    "answer",
)

NodeStatus = Literal["started", "completed", "failed", "skipped"]


class GeoPoint(BaseModel):
    model_config = _FROZEN

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class HistoryItem(BaseModel):
    """One earlier message of the chat (the handler passes the last 10, oldest first)."""

    model_config = _FROZEN

    role: Literal["user", "assistant"]
    content: str
    intent: str | None = None


class TurnInput(BaseModel):
    """Everything one turn needs; the graph keeps no state between turns."""

    model_config = _FROZEN

    chat_id: str
    user_id: str
    message: str
    image_url: str | None = None
    location: GeoPoint | None = None
    history: list[HistoryItem] = Field(default_factory=list)
    previous_intent: str | None = None
    model: str | None = None  # None: the deployment's default model


class NodeUpdate(BaseModel):
    """Progress of one stage. ``skipped``: not run or its context left out (``message`` says
    why, e.g. an OPEN node that failed or a breaker that is open)."""

    model_config = _FROZEN

    node: str
    status: NodeStatus
    message: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class Token(BaseModel):
    """A delta of the answer text (appended by the client)."""

    model_config = _FROZEN

    content: str
    node: str = "answer"


class NeedsInput(BaseModel):
    """The turn needs the user's location; it ends here and is re-run with it."""

    model_config = _FROZEN

    input_type: Literal["location"] = "location"
    message: str


class TurnResult(BaseModel):
    """The end of a completed turn.

    ``intent`` is the primary intent, ``intents`` every intent asked for (asking order),
    ``subagents`` the stages whose context went into the answer (fallbacks and enrichment
    included), ``skipped`` ``{"node", "reason", "message"}`` per left-out stage, ``sources``
    what the answer rests on (``{"type": "knowledge"|"place"|"dataset"|"web"|"image"|..., ...}``).
    """

    model_config = _FROZEN

    intent: str
    intents: list[str]
    answer: str
    subagents: list[str] = Field(default_factory=list)
    skipped: list[dict[str, Any]] = Field(default_factory=list)
    sources: list[dict[str, Any]] = Field(default_factory=list)
    # set when the turn's requested model could not be served and the default answered
    # (``{"requested", "used", "reason"}``, ``agents.llm.providers.ServedModel.note``)
    model_fallback: dict[str, Any] | None = None


ChatUpdate = NodeUpdate | Token | NeedsInput | TurnResult
