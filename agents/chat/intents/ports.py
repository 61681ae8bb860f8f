"""The port the chat graph classifies through; local and LLM classifiers both implement it."""

from __future__ import annotations

from typing import Protocol

from agents.chat.intents.model import Intent, IntentDecision


class IntentClassifier(Protocol):
    async def classify(
        self, message: str, *, previous_intent: Intent | None = None
    ) -> IntentDecision:
        """The intents of ``message``, split into sub-queries; ``previous_intent`` is the
        primary intent of the session's last turn (chain-of-intent bonus, follow-ups)."""
        ...
