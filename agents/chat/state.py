"""The graph's state and what flows between its nodes.

Nodes never share mutable objects: each returns a partial update; ``outcomes`` is the one
list written by parallel subagent nodes, merged by its reducer (``operator.add``).
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from agents.chat.intents.model import IntentDecision
from agents.chat.subagents.base import Finding, SubTask
from agents.chat.turn import NeedsInput, TurnInput, TurnResult

_FROZEN = ConfigDict(frozen=True)


class Outcome(BaseModel):
    """What one stage produced for one sub-query: a finding, or why there is none."""

    model_config = _FROZEN

    stage: str
    intent: str
    query: str
    enrichment: bool = False
    finding: Finding | None = None
    failure: str | None = None  # NodeFailed.reason
    message: str | None = None  # Korean: why it was left out

    @property
    def found(self) -> bool:
        return self.finding is not None and self.finding.found


class Section(BaseModel):
    """One part of the answer: a finding for one intent (maybe reached through a fallback)."""

    model_config = _FROZEN

    intent: str
    finding: Finding
    fallback_from: str | None = None  # the stage that failed or found nothing
    enrichment: bool = False


class AnswerPlan(BaseModel):
    """The aggregator's result: what the answer says, in asking order."""

    model_config = _FROZEN

    sections: list[Section] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)  # what was left out of an asked intent
    questions: list[str] = Field(default_factory=list)  # clarifying questions (chain's end)
    subagents: list[str] = Field(default_factory=list)
    skipped: list[dict[str, Any]] = Field(default_factory=list)
    sources: list[dict[str, Any]] = Field(default_factory=list)


class ChatState(TypedDict, total=False):
    turn: TurnInput
    decision: IntentDecision
    classifier: str
    item_hint: str | None
    vision_question: str | None
    needs_input: NeedsInput | None
    outcomes: Annotated[list[Outcome], operator.add]
    plan: AnswerPlan
    result: TurnResult


class StageInput(TypedDict):
    """The payload of a ``Send`` to a subagent node."""

    task: SubTask
