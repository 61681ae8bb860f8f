"""The LLM classifier: our DOMAIN scoring on top of a model's structured output.

The LLM is an in-memory twin of the port that returns a fixed structured object, so these
tests exercise our scoring, splitting and fallback — not a model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from agents.chat.intents import (
    Intent,
    IntentClassifier,
    LLMIntentClassifier,
    LLMIntentOutput,
    LocalIntentClassifier,
)
from agents.llm.ports import LLM, ChatMessage, Completion, LLMUnavailable, ToolSpec

T = TypeVar("T", bound=BaseModel)


class FixedLLM:
    """Answers every structured request with one fixed object; records the requests."""

    def __init__(self, output: dict[str, Any] | None = None, *, fail: bool = False) -> None:
        self.output = output
        self.fail = fail
        self.requests: list[tuple[list[ChatMessage], type[BaseModel], str | None]] = []

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        return Completion(text="")

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        self.requests.append((list(messages), schema, model))
        if self.fail:
            raise LLMUnavailable("provider down")
        return schema.model_validate(self.output)

    async def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        yield ""


def one(text: str, **confidences: float) -> dict[str, Any]:
    return {
        "text": text,
        "intents": [{"intent": i, "confidence": c} for i, c in confidences.items()],
    }


def classifier(*subs: dict[str, Any], **kwargs: Any) -> tuple[LLMIntentClassifier, FixedLLM]:
    llm = FixedLLM({"sub_queries": list(subs)})
    port: LLM = llm
    return LLMIntentClassifier(port, **kwargs), llm


async def test_requests_the_schema_with_message_and_previous_intent() -> None:
    clf, llm = classifier(one("페트병 어떻게 버려?", waste=0.9), model="gpt-test")
    port: IntentClassifier = clf
    decision = await port.classify("페트병 어떻게 버려?", previous_intent=Intent.CHARACTER)
    assert decision.intents == {Intent.WASTE}
    messages, schema, model = llm.requests[0]
    assert schema is LLMIntentOutput and model == "gpt-test"
    assert messages[0].role == "system" and "collection_point" in messages[0].content
    assert '"previous_intent": "character"' in messages[1].content
    assert "페트병 어떻게 버려?" in messages[1].content


async def test_keyword_boost_lifts_a_hesitant_model_over_the_threshold() -> None:
    # 0.55 + 0.1 ("버려") = 0.65 ≥ 0.6
    clf, _ = classifier(one("유리병 버려도 돼?", waste=0.55))
    decision = await clf.classify("유리병 버려도 돼?")
    assert decision.intents == {Intent.WASTE}
    assert decision.sub_queries[0].confidence == pytest.approx(0.65)


async def test_no_keyword_drops_a_confident_model_below_the_threshold() -> None:
    # 0.65 − 0.1 (no character keyword) = 0.55 < 0.6 → general
    clf, _ = classifier(one("페티 좋아해?", character=0.65))
    assert (await clf.classify("페티 좋아해?")).intents == {Intent.GENERAL}


async def test_transition_bonus_from_previous_turn_decides() -> None:
    # location: 0.45 + 0.1 ("근처") = 0.55; after a waste turn +0.15 = 0.70.
    clf, _ = classifier(one("근처에 있는 데", location=0.45, general=0.3))
    assert (await clf.classify("근처에 있는 데")).intents == {Intent.GENERAL}
    after_waste = await clf.classify("근처에 있는 데", previous_intent=Intent.WASTE)
    assert after_waste.intents == {Intent.LOCATION}
    assert after_waste.sub_queries[0].confidence == pytest.approx(0.70)


async def test_short_message_penalty_applies() -> None:
    # 0.75 + 0.1 ("소파") − 0.2 (3 characters) = 0.65; 0.65 + 0.1 − 0.2 = 0.55.
    sure, _ = classifier(one("소파?", bulk_waste=0.75))
    unsure, _ = classifier(one("소파?", bulk_waste=0.65))
    assert (await sure.classify("소파?")).intents == {Intent.BULK_WASTE}
    assert (await unsure.classify("소파?")).intents == {Intent.GENERAL}


async def test_sub_queries_are_scored_chained_and_deduplicated() -> None:
    clf, _ = classifier(
        one("페트병 어떻게 버려?", waste=0.9, bulk_waste=0.2),
        # 0.5 + 0.1 ("수거함") + 0.10 (waste → collection_point, from the clause before)
        one("근처 수거함도 알려줘", collection_point=0.5, location=0.3),
        one("유리병은?", waste=0.8),
        one("ㅎㅎ", general=0.9),  # general next to real requests is dropped
    )
    decision = await clf.classify("페트병 어떻게 버려? 근처 수거함도 알려줘 유리병은? ㅎㅎ")
    assert decision.is_multi
    assert decision.ordered_intents == [Intent.WASTE, Intent.COLLECTION_POINT]
    assert decision.sub_queries[0].text == "페트병 어떻게 버려? 유리병은?"
    assert decision.sub_queries[1].confidence == pytest.approx(0.70)
    assert decision.primary is Intent.WASTE  # the most confident sub-query


async def test_per_intent_scores_are_exposed() -> None:
    clf, _ = classifier(one("폐지 시세 알려줘", recyclable_price=0.7, web_search=0.2))
    [(text, scores)] = await clf.sub_query_scores("폐지 시세 알려줘")
    assert text == "폐지 시세 알려줘"
    price = scores[Intent.RECYCLABLE_PRICE]
    assert price.keyword_hits == ("폐지", "시세") and price.final == pytest.approx(0.9)
    assert scores[Intent.WEB_SEARCH].final == pytest.approx(0.1)
    assert set(scores) == set(Intent)


async def test_out_of_range_and_empty_model_answers_are_tolerated() -> None:
    clf, _ = classifier(one("", waste=1.7, location=-0.3))
    decision = await clf.classify("이거 어떻게 버려")
    assert decision.intents == {Intent.WASTE}
    assert decision.sub_queries[0].text == "이거 어떻게 버려"
    nothing, _ = classifier()
    assert (await nothing.classify("음")).intents == {Intent.GENERAL}


async def test_provider_failure_falls_back_to_local_or_raises() -> None:
    down = FixedLLM(fail=True)
    with pytest.raises(LLMUnavailable):
        await LLMIntentClassifier(down).classify("페트병 어떻게 버려?")
    with_fallback = LLMIntentClassifier(down, fallback=LocalIntentClassifier())
    decision = await with_fallback.classify("페트병 어떻게 버려? 근처 수거함도 알려줘")
    assert decision.intents == {Intent.WASTE, Intent.COLLECTION_POINT}
