"""Chat intent classification: 10 intents, DOMAIN.md confidence scoring, multi-intent split.

``LocalIntentClassifier`` is deterministic and offline (similarity to labelled examples +
keyword hints); ``LLMIntentClassifier`` asks a model through the LLM port. Both implement
``IntentClassifier`` and return an ``IntentDecision``.
"""

from __future__ import annotations

from agents.chat.intents.llm import LLMIntentClassifier, LLMIntentOutput
from agents.chat.intents.local import LocalIntentClassifier
from agents.chat.intents.model import Intent, IntentDecision, ScoreBreakdown, SubQuery
from agents.chat.intents.ports import IntentClassifier

__all__ = [
    "Intent",
    "IntentClassifier",
    "IntentDecision",
    "LLMIntentClassifier",
    "LLMIntentOutput",
    "LocalIntentClassifier",
    "ScoreBreakdown",
    "SubQuery",
]
