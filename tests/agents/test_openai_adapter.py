"""OpenAIAdapter with the real ``openai`` SDK against a loopback server speaking its protocol."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from agents.llm.openai_adapter import OpenAIAdapter
from agents.llm.ports import (
    ChatMessage,
    ImageInput,
    LLMBadOutput,
    LLMUnavailable,
    ToolSpec,
)
from schemas.classification import Classification, ScanAnswer
from tests.agents.wirestub import Reply, WireStub
from tests.agents.wirestub import openai_wire as wire

pytestmark = pytest.mark.asyncio

MESSAGES = [
    ChatMessage(role="system", content="너는 분리배출 도우미야."),
    ChatMessage(role="user", content="페트병 어떻게 버려?"),
]


@pytest.fixture
async def adapter(stub: WireStub) -> AsyncIterator[OpenAIAdapter]:
    async with OpenAIAdapter(
        api_key="sk-test",
        base_url=stub.url("/v1"),
        timeout_s=2.0,
        retries=2,
        retry_base_delay_s=0.01,
    ) as llm:
        yield llm


async def test_complete_returns_text_and_sends_the_conversation(stub, adapter):
    stub.enqueue(Reply.json(wire.chat_completion("라벨을 떼고 찌그러뜨려 버리세요.")))

    completion = await adapter.complete(MESSAGES, model="gpt-4o")

    assert completion.text == "라벨을 떼고 찌그러뜨려 버리세요."
    assert completion.tool_calls == []
    (request,) = stub.requests
    assert (request.method, request.path) == ("POST", wire.PATH)
    assert request.headers["authorization"] == "Bearer sk-test"
    body = request.json()
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "너는 분리배출 도우미야."},
        {"role": "user", "content": "페트병 어떻게 버려?"},
    ]
    assert "tools" not in body and not body.get("stream")


async def test_default_model_is_used_when_the_call_names_none(stub, adapter):
    stub.enqueue(Reply.json(wire.chat_completion("ok")))
    await adapter.complete(MESSAGES)
    assert stub.requests[0].json()["model"] == "gpt-4o-mini"


async def test_tool_calls_are_parsed_and_tools_sent(stub, adapter):
    weather = ToolSpec(
        name="get_weather",
        description="오늘 날씨",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}},
    )
    stub.enqueue(
        Reply.json(
            wire.chat_completion(
                tool_calls=[
                    wire.tool_call("get_weather", {"city": "서울"}, "call_a"),
                    wire.tool_call("get_weather", "", "call_b"),  # no arguments at all
                ]
            )
        )
    )
    history = [
        *MESSAGES,
        ChatMessage(role="assistant", content="확인해 볼게요."),
        ChatMessage(role="tool", content='{"temp": 3}', tool_call_id="call_0"),
    ]

    completion = await adapter.complete(history, tools=[weather])

    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [
        ("call_a", "get_weather", {"city": "서울"}),
        ("call_b", "get_weather", {}),
    ]
    body = stub.requests[0].json()
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "오늘 날씨",
                "parameters": weather.parameters,
            },
        }
    ]
    assert body["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_0",
        "content": '{"temp": 3}',
    }


async def test_tool_call_arguments_that_are_not_json_are_bad_output(stub, adapter):
    stub.enqueue(Reply.json(wire.chat_completion(tool_calls=[wire.tool_call("f", "{city: 서울")])))
    with pytest.raises(LLMBadOutput):
        await adapter.complete(MESSAGES, tools=[ToolSpec(name="f", description="d")])
    assert len(stub.requests) == 1  # bad output is not retried


async def test_stream_deltas_reassemble(stub, adapter):
    deltas = ["페트병은 ", "라벨을 떼고 ", "압착해서 ", "버리세요."]
    stub.enqueue(Reply.sse(wire.chat_chunks(deltas), done_marker="[DONE]"))

    received = [d async for d in adapter.stream(MESSAGES)]

    assert received == deltas
    body = stub.requests[0].json()
    assert body["stream"] is True


async def test_stream_ignores_streamed_tool_call_chunks(stub, adapter):
    chunks = wire.chat_chunks(["잠시만요"], tool_calls=[wire.tool_call("f", {"a": 1})])
    stub.enqueue(Reply.sse(chunks, done_marker="[DONE]"))
    assert [d async for d in adapter.stream(MESSAGES)] == ["잠시만요"]


async def test_stream_is_retried_when_it_fails_before_the_first_delta(stub, adapter):
    stub.enqueue(
        Reply.json(wire.error("slow down", type_="rate_limit_exceeded"), status=429),
        Reply.sse(wire.chat_chunks(["안녕", "하세요"]), done_marker="[DONE]"),
    )
    assert "".join([d async for d in adapter.stream(MESSAGES)]) == "안녕하세요"
    assert len(stub.requests) == 2


async def test_stream_breaking_off_after_a_delta_is_not_retried(stub):
    stub.enqueue(
        Reply.sse(wire.chat_chunks(["첫 조각", "늦은 조각"]), done_marker="[DONE]", pauses={2: 30})
    )
    # 1 s: the first delta must come within it even on a loaded machine; the stall is 30 s
    async with OpenAIAdapter("sk", stub.url("/v1"), timeout_s=1, retry_base_delay_s=0.01) as llm:
        received: list[str] = []
        with pytest.raises(LLMUnavailable, match="mid-stream"):
            async for delta in llm.stream(MESSAGES):
                received.append(delta)
    assert received == ["첫 조각"]  # never repeated by a retry
    assert len(stub.requests) == 1


class Verdict(BaseModel):
    item: str
    recyclable: bool


async def test_structured_output_uses_a_strict_schema_and_validates(stub, adapter):
    stub.enqueue(Reply.json(wire.chat_completion('{"item": "페트병", "recyclable": true}')))

    verdict = await adapter.structured(MESSAGES, Verdict)

    assert verdict == Verdict(item="페트병", recyclable=True)
    response_format = stub.requests[0].json()["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "Verdict"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["additionalProperties"] is False


async def test_structured_output_with_open_dicts_is_sent_non_strict(stub, adapter):
    answer = '{"disposal_steps": {"1": "비우기", "2": "헹구기"}, "insufficiencies": [], "user_answer": "네"}'
    stub.enqueue(Reply.json(wire.chat_completion(answer)))

    result = await adapter.structured(MESSAGES, ScanAnswer)

    assert result.disposal_steps == {"1": "비우기", "2": "헹구기"}
    assert stub.requests[0].json()["response_format"]["json_schema"]["strict"] is False


@pytest.mark.parametrize(
    "content",
    [
        '{"item": "페트병"',
        '{"item": 3, "recyclable": "maybe", "disposal_steps": "비우기"}',
        "not json",
    ],
    ids=["cut", "wrong-types", "text"],
)
@pytest.mark.parametrize("schema", [Verdict, ScanAnswer], ids=["strict", "non-strict"])
async def test_structured_output_that_does_not_fit_is_bad_output(stub, adapter, content, schema):
    stub.enqueue(Reply.json(wire.chat_completion(content)))
    with pytest.raises(LLMBadOutput):
        await adapter.structured(MESSAGES, schema)
    assert len(stub.requests) == 1


async def test_a_refusal_is_bad_output(stub, adapter):
    stub.enqueue(Reply.json(wire.chat_completion(None, refusal="I can't help with that.")))
    with pytest.raises(LLMBadOutput, match="refused"):
        await adapter.structured(MESSAGES, Verdict)


async def test_429_then_200_is_retried_and_succeeds(stub, adapter):
    stub.enqueue(
        Reply.json(wire.error("Rate limit reached", type_="requests"), status=429),
        Reply.json(wire.chat_completion("두 번째에 성공")),
    )
    assert (await adapter.complete(MESSAGES)).text == "두 번째에 성공"
    assert len(stub.requests) == 2


async def test_500_on_every_attempt_is_unavailable_after_retries(stub, adapter):
    stub.enqueue(*[Reply.json(wire.error("boom"), status=500) for _ in range(3)])
    with pytest.raises(LLMUnavailable, match="after 3 attempts"):
        await adapter.complete(MESSAGES)
    assert len(stub.requests) == 3


async def test_a_reply_slower_than_the_timeout_is_unavailable_in_bounded_time(stub):
    stub.enqueue(*[Reply.json(wire.chat_completion("late"), delay_s=30) for _ in range(2)])
    async with OpenAIAdapter(
        "sk", stub.url("/v1"), timeout_s=0.3, retries=1, retry_base_delay_s=0.01
    ) as llm:
        started = time.monotonic()
        with pytest.raises(LLMUnavailable):
            await llm.complete(MESSAGES)
        elapsed = time.monotonic() - started
    assert elapsed < 10  # 2 attempts × 0.3 s (slack for a loaded machine), not 30 s
    assert len(stub.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404])
async def test_client_errors_are_not_retried(stub, adapter, status):
    stub.enqueue(Reply.json(wire.error("no", type_="invalid_request_error"), status=status))
    with pytest.raises(LLMUnavailable, match=f"HTTP {status}") as raised:
        await adapter.complete(MESSAGES)
    assert raised.value.__cause__ is not None  # translated with `raise ... from exc`
    assert len(stub.requests) == 1


async def test_an_unreachable_server_is_unavailable(stub):
    stub.stop()
    async with OpenAIAdapter(
        "sk", stub.url("/v1"), timeout_s=1, retries=1, retry_base_delay_s=0
    ) as llm:
        with pytest.raises(LLMUnavailable, match="after 2 attempts"):
            await llm.complete(MESSAGES)


VISION_JSON = (
    '{"major_category": "재활용폐기물", "middle_category": "무색페트병", "minor_category": "음료PET병",'
    ' "situation_tags": ["라벨부착"], "confidence": 0.93, "question": ""}'
)


async def test_vision_sends_the_image_as_a_data_url_and_parses_the_result(stub, adapter):
    image = b"\x89PNG\r\n\x1a\n-fake-png-bytes"
    stub.enqueue(Reply.json(wire.chat_completion(VISION_JSON)))

    result = await adapter.classify(
        ImageInput(data=image, content_type="image/png", filename="bottle.png"), hint="생수병"
    )

    assert result.classification == Classification(
        major_category="재활용폐기물", middle_category="무색페트병", minor_category="음료PET병"
    )
    assert result.situation_tags == ["라벨부착"] and result.confidence == 0.93
    assert result.question is None
    body = stub.requests[0].json()
    user = body["messages"][-1]
    text_part, image_part = user["content"]
    assert "생수병" in text_part["text"] and "bottle.png" in text_part["text"]
    assert (
        image_part["image_url"]["url"]
        == "data:image/png;base64," + base64.b64encode(image).decode()
    )
    assert body["response_format"]["json_schema"]["strict"] is True


async def test_vision_sends_an_image_url_when_it_has_no_bytes(stub, adapter):
    stub.enqueue(Reply.json(wire.chat_completion(VISION_JSON)))
    await adapter.classify(ImageInput(url="https://images.example/x.jpg"))
    image_part = stub.requests[0].json()["messages"][-1]["content"][1]
    assert image_part == {"type": "image_url", "image_url": {"url": "https://images.example/x.jpg"}}


async def test_vision_unsure_reply_asks_the_user(stub, adapter):
    unsure = VISION_JSON.replace("재활용폐기물", "미분류").replace("0.93", "0.2")
    stub.enqueue(Reply.json(wire.chat_completion(unsure)))
    result = await adapter.classify(ImageInput(data=b"img"))
    assert result.classification.is_unclassified
    assert result.question  # never left without asking


async def test_vision_without_any_image_asks_instead_of_calling(stub, adapter):
    result = await adapter.classify(ImageInput(filename="photo.jpg"))
    assert result.classification.is_unclassified and result.question
    assert stub.requests == []
