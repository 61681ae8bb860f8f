"""Conversation over the offline chat graph: every multi-intent joiner, follow-ups resolved
against earlier turns, honest "can't know" answers, plain wording for a missing source, and
sample labels on everything built on the shipped sample data."""

from __future__ import annotations

import pytest

from agents.chat import (
    GeoPoint,
    HistoryItem,
    TurnInput,
    TurnResult,
    build_chat_graph,
    offline_chat_deps,
)
from agents.chat.graph import ChatGraph
from agents.knowledge import KnowledgeBase

pytestmark = pytest.mark.asyncio
CITY_HALL = GeoPoint(latitude=37.5663, longitude=126.9779)


@pytest.fixture(scope="module")
def graph() -> ChatGraph:
    return build_chat_graph(offline_chat_deps(KnowledgeBase.load()))


async def ask(
    graph: ChatGraph, message: str, history: list[HistoryItem] | None = None
) -> TurnResult:
    history = history or []
    previous = next((h.intent for h in reversed(history) if h.intent), None)
    turn = TurnInput(
        chat_id="c",
        user_id="u",
        message=message,
        location=CITY_HALL,
        history=history,
        previous_intent=previous,
    )
    results = [item async for item in graph.run(turn) if isinstance(item, TurnResult)]
    assert len(results) == 1
    return results[0]


async def conversation(graph: ChatGraph, *messages: str) -> list[TurnResult]:
    history: list[HistoryItem] = []
    results = []
    for message in messages:
        result = await ask(graph, message, history)
        results.append(result)
        history += [
            HistoryItem(role="user", content=message, intent=result.intent),
            HistoryItem(role="assistant", content=result.answer),
        ]
    return results


@pytest.mark.parametrize(
    ("message", "intents", "facts"),
    [
        ("랩이랑 근처 제로웨이스트샵 알려줘", ["waste", "location"], ["종량제", "(샘플)"]),
        ("소파 버리는 법이랑 고철 시세", ["bulk_waste", "recyclable_price"], ["신고", "샘플"]),
        ("칫솔 버리는 방법하고 오늘 날씨", ["waste", "weather"], ["종량제", "날씨"]),
        ("우유팩 어떻게 버려 그리고 캐릭터 몇 개야", ["waste", "character"], ["종이팩", "캐릭터"]),
        ("형광등 버리는 법 또 폐지 시세", ["waste", "recyclable_price"], ["형광등", "샘플"]),
        (
            "부탄가스 버리는 법, 근처 수거함도 찾아줘",
            ["waste", "collection_point"],
            ["구멍", "(샘플)"],
        ),
        ("라이터 어떻게 버리고 캐릭터는 어떻게 얻어", ["waste", "character"], ["가스", "캐릭터"]),
        ("건전지 버리는 법 알려주며 날씨도 알려줘", ["waste", "weather"], ["수거함", "날씨"]),
        ("스티로폼 어떻게 버려? 근처 재활용센터는?", ["waste", "location"], ["스티로폼", "(샘플)"]),
        ("택배상자 버리는법 알려주구 폐지 시세도", ["waste", "recyclable_price"], ["종이류", "샘플"]),
        ("캔 버리는 법 근처 수거함도 알려줘", ["waste", "collection_point"], ["캔", "(샘플)"]),
    ],
)
async def test_every_joiner_splits_and_every_part_is_answered_in_order(
    graph: ChatGraph, message: str, intents: list[str], facts: list[str]
) -> None:
    result = await ask(graph, message)
    assert result.intents == intents, message
    positions = [result.answer.find(fact) for fact in facts]
    assert all(p >= 0 for p in positions), (message, result.answer)


async def test_a_follow_up_uses_the_previous_item_instead_of_repeating(graph: ChatGraph) -> None:
    first, caps = await conversation(graph, "생수병 어떻게 버려?", "뚜껑은?")
    assert caps.intents == ["waste"]
    assert "뚜껑" in caps.answer and caps.answer != first.answer
    _, broken = await conversation(graph, "맥주병 어떻게 버려?", "깨졌으면?")
    assert "신문지" in broken.answer and "보증금" not in broken.answer
    _, dirty = await conversation(graph, "플라스틱 용기 어떻게 버려?", "양념 안 지워지면?")
    assert "종량제" in dirty.answer
    _, bins = await conversation(graph, "건전지 어떻게 버려?", "가까운 수거함 어디야?")
    assert bins.intents == ["collection_point"] and "(샘플)" in bins.answer
    # a follow-up that names an item stays on the last topic when that was not disposal
    _, price = await conversation(graph, "폐지 얼마야?", "캔은?")
    assert price.intents == ["recyclable_price"]
    _, more_bins = await conversation(graph, "근처 의류수거함", "폐건전지는?")
    assert more_bins.intents == ["collection_point"]


async def test_district_schedules_get_an_honest_answer_with_where_to_ask(graph: ChatGraph) -> None:
    result = await ask(graph, "마포구 망원동 재활용 수거 요일 알려줘")
    assert result.intents == ["waste"]
    assert "마포구청" in result.answer and "120" in result.answer
    assert "자료에 없어" in result.answer and "더 구체적으로" not in result.answer


async def test_an_unavailable_source_gets_plain_words_and_general_advice(graph: ChatGraph) -> None:
    result = await ask(graph, "오늘 날씨 어때")
    assert "설정되" not in result.answer and "이 환경" not in result.answer
    assert "가져올 수 없어" in result.answer and "젖" in result.answer


@pytest.mark.parametrize(
    "message",
    ["근처 의류수거함 어디야", "가까운 재활용센터 알려줘", "침대 버리는 비용", "고철 시세 얼마야"],
)
async def test_answers_built_on_sample_data_say_so(graph: ChatGraph, message: str) -> None:
    result = await ask(graph, message)
    assert "샘플" in result.answer, message
    places = [s for s in result.sources if s.get("type") == "place"]
    assert all(p["sample"] is True for p in places)
