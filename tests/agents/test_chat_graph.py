"""The chat graph end to end over in-memory twins: fan-out, concurrency, the answer text,
needs_input, enrichment, images, the LLM classifier path."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from agents.chat import (
    STAGES,
    ChatDeps,
    GeoPoint,
    HistoryItem,
    NeedsInput,
    NodeUpdate,
    Token,
    TurnInput,
    TurnResult,
    build_chat_graph,
    offline_chat_deps,
)
from agents.chat.intents import LLMIntentOutput, LocalIntentClassifier
from agents.chat.media import InMemoryChatMedia
from agents.chat.subagents.places import InMemoryLocations
from agents.chat.subagents.weather import WeatherReport
from agents.knowledge import KnowledgeBase
from agents.llm.local import LocalLLM, LocalVision
from agents.llm.ports import ChatMessage
from tests.agents.stubs.twins import FixedWeather, RecordingKnowledge, RecordingLocations, Spans

pytestmark = pytest.mark.asyncio

CITY_HALL = GeoPoint(latitude=37.5663, longitude=126.9779)
PET_AND_BINS = "페트병 어떻게 버려? 근처 수거함도 알려줘"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="module")
def intents() -> LocalIntentClassifier:
    return LocalIntentClassifier()


@pytest.fixture
def deps(kb: KnowledgeBase, intents: LocalIntentClassifier) -> ChatDeps:
    return offline_chat_deps(kb, intents=intents)


def turn(message: str, **kw: Any) -> TurnInput:
    return TurnInput(chat_id="chat-1", user_id="user-1", message=message, **kw)


async def collect(deps: ChatDeps, t: TurnInput) -> tuple[list[NodeUpdate], list[Token], Any]:
    updates: list[NodeUpdate] = []
    tokens: list[Token] = []
    terminal: list[Any] = []
    async for item in build_chat_graph(deps).run(t):
        if isinstance(item, NodeUpdate):
            assert not terminal, "nothing may follow the terminal item"
            updates.append(item)
        elif isinstance(item, Token):
            assert not terminal
            tokens.append(item)
        else:
            terminal.append(item)
    assert len(terminal) == 1, terminal
    return updates, tokens, terminal[0]


def statuses(updates: Sequence[NodeUpdate], node: str) -> list[str]:
    return [u.status for u in updates if u.node == node]


async def test_pet_rules_and_nearest_bins_run_concurrently(
    deps: ChatDeps, kb: KnowledgeBase
) -> None:
    spans = Spans()
    places = InMemoryLocations.from_sample().places
    deps = dataclasses.replace(
        deps, kb=RecordingKnowledge(kb, spans), locations=RecordingLocations(places, spans)
    )
    updates, tokens, result = await collect(deps, turn(PET_AND_BINS, location=CITY_HALL))

    assert isinstance(result, TurnResult)
    assert result.intent == "waste"
    assert result.intents == ["waste", "collection_point"]
    assert result.subagents[:2] == ["waste_rag", "collection_point"]
    # both subagents were in flight at the same time (Send fan-out, not one after the other)
    assert spans.overlap("waste_rag", "locations")
    # PET rules from the knowledge base
    for fact in ("무색페트병", "라벨", "찌그러뜨리기", "뚜껑을 닫아"):
        assert fact in result.answer
    # the nearest bins, nearest first, with distances
    first = result.answer.index("시청 앞 투명페트병·캔 무인회수기")
    second = result.answer.index("무교동 주민센터 재활용 수거함")
    assert first < second
    assert "약 20m" in result.answer
    assert "".join(t.content for t in tokens) == result.answer
    assert all(t.node == "answer" for t in tokens)
    assert statuses(updates, "waste_rag") == ["started", "completed"]
    assert statuses(updates, "collection_point") == ["started", "completed"]
    assert [s["type"] for s in result.sources][:2] == ["knowledge", "place"]


async def test_location_question_without_location_asks_for_it(deps: ChatDeps) -> None:
    updates, tokens, terminal = await collect(deps, turn(PET_AND_BINS))
    assert isinstance(terminal, NeedsInput)
    assert terminal.input_type == "location"
    assert "위치" in terminal.message
    assert tokens == []
    # the turn stops after the intent node: no subagent ran
    assert {u.node for u in updates} == {"intent"}
    assert updates[-1].detail["needs_input"] is True


@pytest.mark.parametrize(
    ("message", "location", "expected"),
    [
        ("안녕", None, ["general"]),
        ("강남구 소파 버리는 수수료 얼마야?", None, ["bulk_waste"]),
        ("고철 시세 알려줘", None, ["recyclable_price"]),
        ("근처 제로웨이스트샵 어디야", CITY_HALL, ["location"]),
        ("페트병 버리면 무슨 캐릭터 얻어?", None, ["character"]),
        ("최근 분리배출 정책 뉴스 알려줘", None, ["web_search"]),
        ("페트병 분리배출 인포그래픽 그려줘", None, ["image_generation"]),
        ("오늘 날씨 어때?", CITY_HALL, ["weather"]),
    ],
)
async def test_every_turn_streams_exactly_its_answer(
    deps: ChatDeps, message: str, location: GeoPoint | None, expected: list[str]
) -> None:
    updates, tokens, result = await collect(deps, turn(message, location=location))
    assert isinstance(result, TurnResult)
    assert result.intents == expected
    assert result.answer.strip()
    assert "".join(t.content for t in tokens) == result.answer
    assert {u.node for u in updates} <= set(STAGES)
    assert statuses(updates, "answer") == ["started", "completed"]
    assert updates[0].node == "intent" and updates[-1].node == "answer"


async def test_answers_are_grounded_in_each_subagent(deps: ChatDeps) -> None:
    _, _, fees = await collect(deps, turn("강남구 소파 버리는 수수료 얼마야?"))
    assert "3인용 이상 12,000원" in fees.answer and "샘플" in fees.answer
    _, _, price = await collect(deps, turn("고철 시세 알려줘"))
    assert "고철 중량: 420원/kg" in price.answer
    _, _, shop = await collect(deps, turn("근처 제로웨이스트샵 어디야", location=CITY_HALL))
    assert "세종대로 제로웨이스트샵 (샘플)" in shop.answer and "약 310m" in shop.answer
    _, _, hello = await collect(deps, turn("안녕"))
    assert "이코" in hello.answer
    _, _, weather = await collect(deps, turn("오늘 날씨 어때?", location=CITY_HALL))
    assert "날씨 정보를 지금은 가져올 수 없어" in weather.answer  # offline, and it says so
    assert weather.skipped[0]["node"] == "weather"


async def test_three_intents_in_one_message(deps: ChatDeps) -> None:
    _, tokens, result = await collect(
        deps, turn("캐릭터 뭐 있어? 그리고 고철 시세도 알려줘. 페트병은 어떻게 버려?")
    )
    assert set(result.intents) == {"character", "recyclable_price", "waste"}
    assert {"character", "recyclable_price", "waste_rag"} <= set(result.subagents)
    assert "13종" in result.answer and "고철" in result.answer and "무색페트병" in result.answer
    assert "".join(t.content for t in tokens) == result.answer


async def test_weather_is_added_to_waste_answers_when_the_location_is_known(deps: ChatDeps) -> None:
    rainy = WeatherReport(
        temperature_c=12.0,
        humidity_pct=90,
        rain_mm_1h=3.5,
        precipitation=1,
        wind_ms=2.0,
        observed_at="2026-10-01 14:00",
        source="기상청 초단기실황",
    )
    weather = FixedWeather(rainy)
    deps = dataclasses.replace(deps, weather=weather)
    updates, _, result = await collect(deps, turn("택배 상자 어떻게 버려?", location=CITY_HALL))
    assert result.intents == ["waste"]  # enrichment is not an asked intent
    assert result.subagents == ["waste_rag", "weather"]
    assert "기온 12.0°C" in result.answer and "젖지 않게" in result.answer
    assert any(u.node == "weather" and u.detail.get("enrichment") for u in updates)
    # without a location there is no weather to add
    weather.calls = 0
    _, _, plain = await collect(deps, turn("택배 상자 어떻게 버려?"))
    assert weather.calls == 0 and plain.subagents == ["waste_rag"]


async def test_generated_image_is_stored_and_linked(
    kb: KnowledgeBase, intents: LocalIntentClassifier
) -> None:
    media = InMemoryChatMedia()
    deps = offline_chat_deps(kb, intents=intents, media=media)
    _, _, result = await collect(deps, turn("페트병 분리배출 인포그래픽 그려줘"))
    [source] = [s for s in result.sources if s["type"] == "image"]
    assert source["url"] in result.answer
    [(data, content_type)] = media.items.values()
    assert content_type == "image/png" and data.startswith(b"\x89PNG\r\n\x1a\n")
    assert "투명 페트병 분리배출".encode() in data  # the card's text travels in iTXt


async def test_chat_image_is_classified_and_answered(
    kb: KnowledgeBase, intents: LocalIntentClassifier
) -> None:
    deps = offline_chat_deps(kb, intents=intents, vision=LocalVision(kb))
    updates, _, result = await collect(
        deps, turn("이거 어떻게 버려?", image_url="https://img.example/uploads/pet_bottle.jpg")
    )
    vision = [u for u in updates if u.node == "vision"]
    assert [u.status for u in vision] == ["started", "completed"]
    assert vision[-1].detail["middle_category"] == "무색페트병"
    assert result.intent == "waste" and "무색페트병" in result.answer


async def test_history_and_previous_intent_reach_the_classifier(deps: ChatDeps) -> None:
    history = [
        HistoryItem(role="user", content="페트병 어떻게 버려?", intent="waste"),
        HistoryItem(role="assistant", content="라벨을 떼고 …"),
    ]
    _, _, result = await collect(
        deps, turn("그럼 유리병은?", history=history, previous_intent="waste")
    )
    assert result.intents == ["waste"] and "유리병" in result.answer


class ScriptedIntentLLM(LocalLLM):
    """The local LLM, except that intent classification answers with a fixed structured output."""

    def __init__(self, kb: KnowledgeBase, output: LLMIntentOutput) -> None:
        super().__init__(kb)
        self.output = output
        self.models: list[str | None] = []

    async def structured(
        self, messages: Sequence[ChatMessage], schema: Any, *, model: str | None = None
    ) -> Any:
        self.models.append(model)
        if schema is LLMIntentOutput:
            return self.output
        return await super().structured(messages, schema, model=model)


async def test_remote_models_classify_with_the_llm(
    kb: KnowledgeBase, intents: LocalIntentClassifier
) -> None:
    output = LLMIntentOutput.model_validate(
        {
            "sub_queries": [
                {
                    "text": "고철 얼마에 팔 수 있어",
                    "intents": [{"intent": "recyclable_price", "confidence": 0.9}],
                }
            ]
        }
    )
    llm = ScriptedIntentLLM(kb, output)
    deps = offline_chat_deps(kb, intents=intents, llm=llm)
    updates, _, result = await collect(deps, turn("고철 얼마에 팔 수 있어", model="gpt-4o-mini"))
    intent_done = [u for u in updates if u.node == "intent"][-1]
    assert intent_done.detail["classifier"] == "llm"
    assert llm.models == ["gpt-4o-mini"]
    assert result.intents == ["recyclable_price"]
    # a local turn never asks the LLM classifier
    _, _, local = await collect(deps, turn("고철 얼마에 팔 수 있어"))
    assert llm.models == ["gpt-4o-mini"] and local.intents == ["recyclable_price"]


async def test_failing_llm_classifier_falls_back_to_the_local_one(
    kb: KnowledgeBase, intents: LocalIntentClassifier
) -> None:
    # the local LLM cannot produce LLMIntentOutput: LLMBadOutput → FALLBACK to the local classifier
    deps = offline_chat_deps(kb, intents=intents)
    updates, _, result = await collect(deps, turn("페트병 어떻게 버려?", model="gemini-2.5-flash"))
    intent_done = [u for u in updates if u.node == "intent"][-1]
    assert intent_done.detail["classifier"] == "local"
    assert intent_done.message and "의도 분석" in intent_done.message
    assert result.intents == ["waste"]


async def test_graph_is_built_once_and_reused(deps: ChatDeps) -> None:
    graph = build_chat_graph(deps)
    answers = []
    for message in ("페트병 어떻게 버려?", "고철 시세 알려줘"):
        items = [i async for i in graph.run(turn(message))]
        assert isinstance(items[-1], TurnResult)
        answers.append(items[-1].answer)
    assert answers[0] != answers[1]
