"""LocalVision, LocalLLM and LatencyProfile."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel

from agents.knowledge import KnowledgeBase, scan_context_message
from agents.llm.latency import LatencyProfile
from agents.llm.local import LocalLLM, LocalVision
from agents.llm.ports import ChatMessage, ImageInput, LLMBadOutput, ToolSpec
from schemas.classification import UNCLASSIFIED, ScanAnswer

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.mark.asyncio
async def test_vision_from_hint_with_situation_tags(kb: KnowledgeBase) -> None:
    seen = await LocalVision(kb).classify(ImageInput(data=JPEG), hint="라벨 안 뗀 생수병")
    assert seen.classification.middle_category == "무색페트병"
    assert seen.classification.minor_category == "먹는샘물PET병"
    assert seen.situation_tags == ["label_attached"] and seen.question is None
    assert seen.confidence > 0.8


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("image", "middle"),
    [
        (ImageInput(filename="pet_bottle.jpg"), "무색페트병"),
        (ImageInput(filename="페트병.png"), "무색페트병"),
        (ImageInput(filename="SodaCan.PNG"), "금속류"),
        (ImageInput(url="https://cdn.example/media/scan/milk-carton.jpeg"), "종이팩"),
        (ImageInput(filename="IMG_2034.jpg"), UNCLASSIFIED),
    ],
)
async def test_vision_from_filename(kb: KnowledgeBase, image: ImageInput, middle: str) -> None:
    seen = await LocalVision(kb).classify(image)
    assert seen.classification.middle_category == middle


@pytest.mark.asyncio
async def test_vision_hint_wins_over_filename_and_redirects_broken_glass(kb: KnowledgeBase) -> None:
    seen = await LocalVision(kb).classify(
        ImageInput(data=PNG, filename="can.png"), hint="깨진 맥주병"
    )
    assert seen.classification.middle_category == "깨진유리·도자기"
    assert "broken" in seen.situation_tags and "deposit_bottle" in seen.situation_tags


@pytest.mark.asyncio
async def test_vision_unclassified_asks_and_never_invents(kb: KnowledgeBase) -> None:
    seen = await LocalVision(kb).classify(
        ImageInput(data=JPEG, filename="photo.jpg"), hint="이거요"
    )
    assert seen.classification.major_category == UNCLASSIFIED
    assert seen.classification.middle_category == UNCLASSIFIED
    assert seen.confidence == 0.0 and seen.question and "알려" in seen.question


@pytest.mark.asyncio
async def test_vision_rejects_bytes_that_are_not_an_image(kb: KnowledgeBase) -> None:
    with pytest.raises(LLMBadOutput, match="could not be read"):
        await LocalVision(kb).classify(ImageInput(data=b"%PDF-1.7 not an image"), hint="페트병")
    lenient = LocalVision(kb, check_image_bytes=False)
    assert (
        await lenient.classify(ImageInput(data=b"xx"), hint="페트병")
    ).classification.middle_category == "무색페트병"


@pytest.mark.asyncio
async def test_structured_scan_answer_from_context(kb: KnowledgeBase) -> None:
    seen = LocalVision(kb).classify_text("라벨 뗀 생수병")
    rule = kb.rule_for(seen.classification)
    messages = [
        ChatMessage(role="system", content="너는 분리배출 도우미야."),
        scan_context_message(seen.classification, rule, seen.situation_tags, "라벨 뗀 생수병"),
        ChatMessage(role="user", content="라벨 뗀 생수병"),
    ]
    answer = await LocalLLM(kb).structured(messages, ScanAnswer)
    assert isinstance(answer, ScanAnswer)
    assert answer.insufficiencies == [] and rule is not None and answer.disposal_steps == rule.steps
    assert "무색페트병" in answer.user_answer
    again = await LocalLLM(kb).structured(messages, ScanAnswer)
    assert again == answer  # deterministic


@pytest.mark.asyncio
async def test_structured_scan_answer_without_context_uses_the_kb(kb: KnowledgeBase) -> None:
    llm = LocalLLM(kb)
    dirty = await llm.structured(
        [ChatMessage(role="user", content="기름 묻은 비닐봉지")], ScanAnswer
    )
    assert dirty.insufficiencies and "종량제봉투" in dirty.insufficiencies[0]
    unknown = await llm.structured([ChatMessage(role="user", content="이건 뭘까")], ScanAnswer)
    assert unknown.insufficiencies and "알려" in unknown.user_answer


@pytest.mark.asyncio
async def test_structured_other_schemas(kb: KnowledgeBase) -> None:
    class Intent(BaseModel):
        intent: str
        confidence: float = 0.5

    class WithDefaults(BaseModel):
        items: list[str] = []

    llm = LocalLLM(kb)
    scripted = [ChatMessage(role="user", content='{"intent": "waste", "confidence": 0.9}')]
    assert await llm.structured(scripted, Intent) == Intent(intent="waste", confidence=0.9)
    assert (
        await llm.structured([ChatMessage(role="user", content="hi")], WithDefaults)
        == WithDefaults()
    )
    with pytest.raises(LLMBadOutput, match="Intent"):
        await llm.structured([ChatMessage(role="user", content="hi")], Intent)
    bad_context = [ChatMessage(role="system", content="[eco2:scan-context]\n{not json")]
    with pytest.raises(LLMBadOutput, match="malformed scan context"):
        await llm.structured(bad_context, ScanAnswer)


@pytest.mark.asyncio
async def test_complete_text_sources(kb: KnowledgeBase) -> None:
    llm = LocalLLM(kb)
    rag = await llm.complete([ChatMessage(role="user", content="우유팩 어떻게 버려요?")])
    assert rag.text.startswith("우유팩: 재활용폐기물 › 종이팩.") and not rag.tool_calls
    quoted = await llm.complete(
        [ChatMessage(role="system", content="[eco2:context] 수거일은 화요일이에요."),
         ChatMessage(role="user", content="언제 버려요?")]
    )  # fmt: skip
    assert quoted.text == "수거일은 화요일이에요."
    offline = await llm.complete([ChatMessage(role="user", content="오늘 뉴스 알려줘")])
    assert "오프라인" in offline.text


@pytest.mark.asyncio
async def test_tool_calls_only_on_trigger_keywords(kb: KnowledgeBase) -> None:
    weather = ToolSpec(
        name="weather",
        description="current weather",
        parameters={"type": "object", "properties": {"query": {"type": "string"}}},
    )
    llm = LocalLLM(kb, tool_triggers={"weather": ["날씨"]})
    asked = [ChatMessage(role="user", content="오늘 날씨 어때?")]
    first = await llm.complete(asked, tools=[weather])
    assert [c.name for c in first.tool_calls] == ["weather"]
    assert first.tool_calls[0].arguments == {"query": "오늘 날씨 어때?"}
    assert (await llm.complete(asked, tools=[weather])).tool_calls[0].id == first.tool_calls[0].id
    answered = [
        *asked,
        ChatMessage(role="tool", content="맑음 21도", tool_call_id=first.tool_calls[0].id),
    ]
    final = await llm.complete(answered, tools=[weather])
    assert not final.tool_calls and "맑음 21도" in final.text
    assert not (await LocalLLM(kb).complete(asked, tools=[weather])).tool_calls  # no triggers


@pytest.mark.asyncio
async def test_stream_yields_small_deltas_of_the_reply(kb: KnowledgeBase) -> None:
    llm = LocalLLM(kb, chunk_chars=5)
    messages = [ChatMessage(role="user", content="건전지 버리는 법")]
    deltas = [delta async for delta in llm.stream(messages)]
    assert len(deltas) > 3 and all(0 < len(d) <= 5 for d in deltas)
    assert "".join(deltas) == (await llm.complete(messages)).text


def test_latency_profiles() -> None:
    assert LatencyProfile.named("production").vision_s == 5.2
    assert LatencyProfile.named("production").answer_s == 3.7
    assert LatencyProfile.named("production").total_s == pytest.approx(8.9)
    assert LatencyProfile.named("fast") == LatencyProfile("fast", 0.05, 0.05)
    assert LatencyProfile.named("none").total_s == 0
    with pytest.raises(ValueError, match="unknown latency profile"):
        LatencyProfile.named("slow")
    with pytest.raises(ValueError):
        LatencyProfile("bad", vision_s=-1)


@pytest.mark.asyncio
async def test_adapters_sleep_like_the_profile(kb: KnowledgeBase) -> None:
    fast = LatencyProfile.named("fast")
    started = time.perf_counter()
    await LocalVision(kb, latency=fast).classify(ImageInput(filename="can.jpg"))
    await LocalLLM(kb, latency=fast).structured(
        [ChatMessage(role="user", content="캔")], ScanAnswer
    )
    deltas = [
        d async for d in LocalLLM(kb, latency=fast).stream([ChatMessage(role="user", content="캔")])
    ]
    elapsed = time.perf_counter() - started
    # vision 0.05 + answer 0.05 + streamed answer 0.05 (the upper bound only rules out a slower profile)
    assert deltas and 0.15 <= elapsed < 3.0
