"""The LLM intent classifier: the model proposes sub-queries and per-intent confidences with
structured output; DOMAIN.md's keyword boost, transition bonus, short-message penalty and
threshold are applied on top exactly as for the local classifier.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, ConfigDict, Field

from agents.chat.intents.decompose import assemble
from agents.chat.intents.keywords import keyword_hits
from agents.chat.intents.local import LocalIntentClassifier
from agents.chat.intents.model import Intent, IntentDecision, ScoreBreakdown
from agents.chat.intents.scoring import decide, score_intents
from agents.llm.ports import LLM, ChatMessage, LLMError

MAX_SUB_QUERIES = 4


class LLMIntentScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    intent: Intent
    confidence: float = Field(description="0.0–1.0: how sure you are this part asks for it")


class LLMSubQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str = Field(description="the part of the message that asks one thing")
    intents: list[LLMIntentScore] = Field(description="candidate intents, most likely first")


class LLMIntentOutput(BaseModel):
    """The structured output the model is asked for."""

    model_config = ConfigDict(frozen=True)

    sub_queries: list[LLMSubQuery]


SYSTEM_PROMPT = """\
You classify messages to a Korean recycling assistant. Intents:
- waste: how to sort or dispose of an item (분리배출, 재활용 여부, 음식물/종량제)
- character: the app's collectible characters (이코, 페티, 메탈리 …), how to get them
- location: where a shop or facility is (제로웨이스트 샵, 재활용센터, 고물상)
- bulk_waste: furniture/appliances: fees, stickers, applying for pickup (대형폐기물)
- recyclable_price: market prices of recyclables (고철, 폐지, 캔 시세)
- collection_point: dedicated bins (의류수거함, 폐건전지, 폐형광등, 폐의약품)
- weather: the weather
- image_generation: drawing an image, poster or infographic
- web_search: current news, new policies or regulations, anything to look up online
- general: greetings, chit-chat, general knowledge, or nothing above
If the message asks several things, split it into sub-queries (one per request, in order,
each in the user's words). Give each sub-query its candidate intents with confidences.
A short follow-up ("그럼 유리병은?") usually continues the previous turn's intent."""


def _request(message: str, previous_intent: Intent | None) -> list[ChatMessage]:
    payload = {
        "message": message,
        "previous_intent": previous_intent.value if previous_intent else None,
    }
    return [
        ChatMessage(role="system", content=SYSTEM_PROMPT),
        ChatMessage(role="user", content=json.dumps(payload, ensure_ascii=False)),
    ]


class LLMIntentClassifier:
    """Intent classification through ``LLM.structured`` with DOMAIN scoring on top.

    With a ``fallback`` classifier, a failing provider degrades to it instead of failing the
    turn (classification is the first node; without it nothing else can run).
    """

    def __init__(
        self,
        llm: LLM,
        *,
        model: str | None = None,
        fallback: LocalIntentClassifier | None = None,
    ) -> None:
        self._llm = llm
        self._model = model
        self._fallback = fallback

    async def sub_query_scores(
        self, message: str, *, previous_intent: Intent | None = None
    ) -> list[tuple[str, dict[Intent, ScoreBreakdown]]]:
        """Each sub-query the model proposed with every intent's score breakdown."""
        output = await self._llm.structured(
            _request(message, previous_intent), LLMIntentOutput, model=self._model
        )
        scored: list[tuple[str, dict[Intent, ScoreBreakdown]]] = []
        previous = previous_intent
        for sub in output.sub_queries[:MAX_SUB_QUERIES]:
            text = sub.text.strip() or message.strip()
            model: dict[Intent, float] = {}
            for candidate in sub.intents:
                model[candidate.intent] = max(
                    model.get(candidate.intent, 0.0), candidate.confidence
                )
            scores = score_intents(model, keyword_hits(text), previous=previous, message=message)
            scored.append((text, scores))
            intent, _ = decide(scores)
            # The chain continues clause to clause, as in the local classifier.
            previous = intent if intent is not Intent.GENERAL else previous
        return scored

    async def classify(
        self, message: str, *, previous_intent: Intent | None = None
    ) -> IntentDecision:
        """Classify one user message (see ``IntentClassifier``)."""
        try:
            scored = await self.sub_query_scores(message, previous_intent=previous_intent)
        except LLMError:
            if self._fallback is None:
                raise
            return self._fallback.classify_sync(message, previous_intent=previous_intent)
        parts = [(text, *decide(scores)) for text, scores in scored]
        return assemble(parts, message)
