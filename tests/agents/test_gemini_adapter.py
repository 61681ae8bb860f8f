"""GeminiAdapter with the real ``google-genai`` SDK against a loopback server speaking its protocol."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from agents.llm.gemini_adapter import GeminiAdapter
from agents.llm.ports import (
    ChatMessage,
    ImageInput,
    LLMBadOutput,
    LLMUnavailable,
    ToolSpec,
)
from schemas.classification import Classification, ScanAnswer
from tests.agents.wirestub import Reply, WireStub
from tests.agents.wirestub import gemini_wire as wire

pytestmark = pytest.mark.asyncio

MODEL = "gemini-2.5-flash"
MESSAGES = [
    ChatMessage(role="system", content="너는 분리배출 도우미야."),
    ChatMessage(role="user", content="페트병 어떻게 버려?"),
]


@pytest.fixture
async def adapter(stub: WireStub) -> AsyncIterator[GeminiAdapter]:
    async with GeminiAdapter(
        api_key="g-test",
        base_url=stub.base_url,
        timeout_s=2.0,
        retries=2,
        retry_base_delay_s=0.01,
    ) as llm:
        yield llm


async def test_complete_returns_text_and_sends_the_conversation(stub, adapter):
    stub.enqueue(Reply.json(wire.generate_response("라벨을 떼고 압착하세요.")))
    history = [
        *MESSAGES,
        ChatMessage(role="assistant", content="네."),
        ChatMessage(role="user", content="뚜껑은?"),
    ]

    completion = await adapter.complete(history)

    assert completion.text == "라벨을 떼고 압착하세요."
    assert completion.tool_calls == []
    (request,) = stub.requests
    assert (request.method, request.path) == ("POST", wire.generate_path(MODEL))
    assert request.headers["x-goog-api-key"] == "g-test"
    body = request.json()
    assert body["systemInstruction"]["parts"] == [{"text": "너는 분리배출 도우미야."}]
    assert [(c["role"], c["parts"]) for c in body["contents"]] == [
        ("user", [{"text": "페트병 어떻게 버려?"}]),
        ("model", [{"text": "네."}]),
        ("user", [{"text": "뚜껑은?"}]),
    ]
    assert "tools" not in body


async def test_the_call_s_model_selects_the_endpoint(stub, adapter):
    stub.enqueue(Reply.json(wire.generate_response("ok")))
    await adapter.complete(MESSAGES, model="gemini-2.5-pro")
    assert stub.requests[0].path == wire.generate_path("gemini-2.5-pro")


async def test_function_calls_are_parsed_and_declarations_sent(stub, adapter):
    weather = ToolSpec(
        name="get_weather",
        description="오늘 날씨",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    stub.enqueue(
        Reply.json(
            wire.generate_response(
                "날씨를 볼게요.",
                parts=[
                    wire.function_call("get_weather", {"city": "서울"}, call_id="fc-1"),
                    wire.function_call("get_weather", {"city": "부산"}),  # no id from the model
                ],
            )
        )
    )

    completion = await adapter.complete(MESSAGES, tools=[weather])

    assert completion.text == "날씨를 볼게요."
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [
        ("get_weather/fc-1", "get_weather", {"city": "서울"}),
        ("get_weather#1", "get_weather", {"city": "부산"}),
    ]
    (declaration,) = stub.requests[0].json()["tools"][0]["functionDeclarations"]
    assert declaration["name"] == "get_weather"
    assert declaration["description"] == "오늘 날씨"
    assert wire.field(declaration, "parametersJsonSchema") == weather.parameters


async def test_tool_results_go_back_as_function_responses(stub, adapter):
    stub.enqueue(Reply.json(wire.generate_response("서울은 3도, 부산은 맑아요.")))
    history = [
        *MESSAGES,
        ChatMessage(role="assistant", content="확인해 볼게요."),
        ChatMessage(role="tool", content='{"temp": 3}', tool_call_id="get_weather/fc-1"),
        ChatMessage(role="tool", content="맑음", tool_call_id="get_weather#1"),
    ]

    await adapter.complete(history)

    last = stub.requests[0].json()["contents"][-1]
    assert last["role"] == "user"  # consecutive tool results merged into one turn
    assert [p["functionResponse"] for p in last["parts"]] == [
        {"id": "fc-1", "name": "get_weather", "response": {"temp": 3}},
        {"name": "get_weather", "response": {"result": "맑음"}},
    ]


async def test_stream_deltas_reassemble(stub, adapter):
    deltas = ["페트병은 ", "라벨을 떼고 ", "압착해서 ", "버리세요."]
    stub.enqueue(Reply.sse(wire.stream_chunks(deltas)))

    received = [d async for d in adapter.stream(MESSAGES)]

    assert received == deltas
    (request,) = stub.requests
    assert request.path == wire.stream_path(MODEL)
    assert request.query == "alt=sse"


async def test_stream_is_retried_when_it_fails_before_the_first_delta(stub, adapter):
    stub.enqueue(
        Reply.json(wire.error(503, "overloaded", "UNAVAILABLE"), status=503),
        Reply.sse(wire.stream_chunks(["안녕", "하세요"])),
    )
    assert "".join([d async for d in adapter.stream(MESSAGES)]) == "안녕하세요"
    assert len(stub.requests) == 2


async def test_stream_breaking_off_after_a_delta_is_not_retried(stub):
    stub.enqueue(Reply.sse(wire.stream_chunks(["첫 조각", "늦은 조각"]), pauses={1: 30}))
    # 1 s: the first delta must come within it even on a loaded machine; the stall is 30 s
    async with GeminiAdapter("g", stub.base_url, timeout_s=1, retry_base_delay_s=0.01) as llm:
        received: list[str] = []
        started = time.monotonic()
        with pytest.raises(LLMUnavailable, match="mid-stream"):
            async for delta in llm.stream(MESSAGES):
                received.append(delta)
        assert time.monotonic() - started < 10  # the timeout, not the 30 s stall
    assert received == ["첫 조각"]
    assert len(stub.requests) == 1


class Verdict(BaseModel):
    item: str
    recyclable: bool


async def test_structured_output_sends_the_json_schema_and_validates(stub, adapter):
    stub.enqueue(Reply.json(wire.generate_response('{"item": "페트병", "recyclable": true}')))

    verdict = await adapter.structured(MESSAGES, Verdict)

    assert verdict == Verdict(item="페트병", recyclable=True)
    config = stub.requests[0].json()["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == Verdict.model_json_schema()


async def test_structured_output_accepts_open_dict_schemas(stub, adapter):
    answer = '{"disposal_steps": {"1": "비우기"}, "insufficiencies": ["라벨"], "user_answer": "네"}'
    stub.enqueue(Reply.json(wire.generate_response(answer)))
    result = await adapter.structured(MESSAGES, ScanAnswer)
    assert result == ScanAnswer(
        disposal_steps={"1": "비우기"}, insufficiencies=["라벨"], user_answer="네"
    )


@pytest.mark.parametrize(
    "content",
    ['{"item": "페트병"', '{"item": 3, "recyclable": "maybe"}', "not json"],
    ids=["cut", "wrong-types", "text"],
)
async def test_structured_output_that_does_not_fit_is_bad_output(stub, adapter, content):
    stub.enqueue(Reply.json(wire.generate_response(content)))
    with pytest.raises(LLMBadOutput):
        await adapter.structured(MESSAGES, Verdict)
    assert len(stub.requests) == 1


async def test_a_blocked_prompt_is_bad_output(stub, adapter):
    stub.enqueue(Reply.json(wire.blocked_response()))
    with pytest.raises(LLMBadOutput, match="SAFETY"):
        await adapter.structured(MESSAGES, Verdict)


async def test_429_then_200_is_retried_and_succeeds(stub, adapter):
    stub.enqueue(
        Reply.json(wire.error(429, "quota", "RESOURCE_EXHAUSTED"), status=429),
        Reply.json(wire.generate_response("두 번째에 성공")),
    )
    assert (await adapter.complete(MESSAGES)).text == "두 번째에 성공"
    assert len(stub.requests) == 2


async def test_500_on_every_attempt_is_unavailable_after_retries(stub, adapter):
    stub.enqueue(*[Reply.json(wire.error(500, "boom", "INTERNAL"), status=500) for _ in range(3)])
    with pytest.raises(LLMUnavailable, match="after 3 attempts"):
        await adapter.complete(MESSAGES)
    assert len(stub.requests) == 3


async def test_a_reply_slower_than_the_timeout_is_unavailable_in_bounded_time(stub):
    stub.enqueue(*[Reply.json(wire.generate_response("late"), delay_s=30) for _ in range(2)])
    async with GeminiAdapter(
        "g", stub.base_url, timeout_s=0.3, retries=1, retry_base_delay_s=0.01
    ) as llm:
        started = time.monotonic()
        with pytest.raises(LLMUnavailable):
            await llm.complete(MESSAGES)
        elapsed = time.monotonic() - started
    assert elapsed < 10  # 2 attempts × 0.3 s (slack for a loaded machine), not 30 s
    assert len(stub.requests) == 2


@pytest.mark.parametrize(
    ("status", "name"),
    [(400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED")],
)
async def test_client_errors_are_not_retried(stub, adapter, status, name):
    stub.enqueue(Reply.json(wire.error(status, "no", name), status=status))
    with pytest.raises(LLMUnavailable, match=f"HTTP {status}") as raised:
        await adapter.complete(MESSAGES)
    assert raised.value.__cause__ is not None
    assert len(stub.requests) == 1


VISION_JSON = (
    '{"major_category": "생활계유해폐기물", "middle_category": "전지", "minor_category": "건전지",'
    ' "situation_tags": [], "confidence": 0.88, "question": ""}'
)


async def test_vision_sends_the_image_inline_and_parses_the_result(stub, adapter):
    image = b"\xff\xd8\xff\xe0-fake-jpeg"
    stub.enqueue(Reply.json(wire.generate_response(VISION_JSON)))

    result = await adapter.classify(
        ImageInput(data=image, content_type="image/jpeg", filename="battery.jpg"), hint="건전지"
    )

    assert result.classification == Classification(
        major_category="생활계유해폐기물", middle_category="전지", minor_category="건전지"
    )
    assert result.confidence == 0.88 and result.question is None
    body = stub.requests[0].json()
    text_part, image_part = body["contents"][0]["parts"]
    assert "건전지" in text_part["text"] and "battery.jpg" in text_part["text"]
    inline = image_part["inlineData"]
    assert wire.field(inline, "mimeType") == "image/jpeg"
    assert wire.decode_bytes(inline["data"]) == image
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert "미분류" in body["systemInstruction"]["parts"][0]["text"]


async def test_vision_sends_an_image_url_as_file_data(stub, adapter):
    stub.enqueue(Reply.json(wire.generate_response(VISION_JSON)))
    await adapter.classify(ImageInput(url="https://images.example/x.png", content_type="image/png"))
    image_part = stub.requests[0].json()["contents"][0]["parts"][1]
    file_data = image_part["fileData"]
    assert wire.field(file_data, "fileUri") == "https://images.example/x.png"
    assert wire.field(file_data, "mimeType") == "image/png"


async def test_vision_unsure_reply_asks_the_user(stub, adapter):
    unsure = VISION_JSON.replace("생활계유해폐기물", "미분류")
    stub.enqueue(Reply.json(wire.generate_response(unsure)))
    result = await adapter.classify(ImageInput(data=b"img"))
    assert result.classification.is_unclassified and result.question
