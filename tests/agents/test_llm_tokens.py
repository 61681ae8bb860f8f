"""``eco2_llm_tokens_total`` moves by the usage each provider reports: the real SDKs against the
loopback wire-protocol servers, and the local provider's characters / 4 estimate."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from pydantic import BaseModel

from agents.llm.gemini_adapter import GeminiAdapter
from agents.llm.local import LocalLLM
from agents.llm.metrics import estimate_tokens
from agents.llm.openai_adapter import OpenAIAdapter
from agents.llm.ports import ChatMessage
from tests.agents.wirestub import Reply, WireStub, gemini_wire, openai_wire

MESSAGES = [
    ChatMessage(role="system", content="너는 분리배출 도우미야."),
    ChatMessage(role="user", content="페트병 어떻게 버려?"),
]


class Verdict(BaseModel):
    item: str
    recyclable: bool


def tokens(provider: str, model: str) -> tuple[float, float]:
    """(prompt, completion) tokens counted so far in this process's default registry."""
    return tuple(  # type: ignore[return-value]
        REGISTRY.get_sample_value(
            "eco2_llm_tokens_total", {"provider": provider, "model": model, "kind": kind}
        ) or 0.0
        for kind in ("prompt", "completion")
    )


def moved(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    return after[0] - before[0], after[1] - before[1]


def openai(stub: WireStub) -> OpenAIAdapter:
    return OpenAIAdapter("sk-test", stub.url("/v1"), timeout_s=2.0, retry_base_delay_s=0.01)


def gemini(stub: WireStub) -> GeminiAdapter:
    return GeminiAdapter(
        api_key="g-test", base_url=stub.base_url, timeout_s=2.0, retry_base_delay_s=0.01
    )


async def test_openai_completion_and_structured_output_count_the_reported_usage(stub):
    stub.enqueue(
        Reply.json(openai_wire.chat_completion("라벨을 떼세요.", usage=(31, 7))),
        Reply.json(openai_wire.chat_completion('{"item": "페트병", "recyclable": true}',
                                               usage=(40, 12))),
    )
    before = tokens("openai", "gpt-4o-tok")
    async with openai(stub) as llm:
        await llm.complete(MESSAGES, model="gpt-4o-tok")
        await llm.structured(MESSAGES, Verdict, model="gpt-4o-tok")
    assert moved(before, tokens("openai", "gpt-4o-tok")) == (71, 19)


async def test_openai_stream_asks_for_usage_and_counts_its_last_chunk(stub):
    chunks = openai_wire.chat_chunks(["페트병은 ", "압착하세요."], usage=(23, 9))
    stub.enqueue(Reply.sse(chunks, done_marker="[DONE]"))
    before = tokens("openai", "gpt-4o-stream")
    async with openai(stub) as llm:
        text = "".join([d async for d in llm.stream(MESSAGES, model="gpt-4o-stream")])
    assert text == "페트병은 압착하세요."
    assert stub.requests[0].json()["stream_options"] == {"include_usage": True}
    assert moved(before, tokens("openai", "gpt-4o-stream")) == (23, 9)


async def test_an_openai_call_that_fails_counts_no_tokens(stub):
    stub.enqueue(Reply.json(openai_wire.error("bad key", type_="invalid_request"), status=401))
    before = tokens("openai", "gpt-4o-fail")
    async with openai(stub) as llm:
        with pytest.raises(Exception):  # noqa: B017 - the port error is tested elsewhere
            await llm.complete(MESSAGES, model="gpt-4o-fail")
    assert moved(before, tokens("openai", "gpt-4o-fail")) == (0, 0)


async def test_gemini_generate_counts_usage_metadata(stub):
    model = "gemini-tok"
    stub.enqueue(Reply.json(gemini_wire.generate_response("압착하세요.", usage=(17, 4))))
    before = tokens("gemini", model)
    async with gemini(stub) as llm:
        await llm.complete(MESSAGES, model=model)
    assert moved(before, tokens("gemini", model)) == (17, 4)


async def test_gemini_stream_counts_the_last_running_total_once(stub):
    model = "gemini-stream"
    chunks = gemini_wire.stream_chunks(["페트병은 ", "라벨을 ", "떼세요."], usage=(19, 6))
    stub.enqueue(Reply.sse(chunks))
    before = tokens("gemini", model)
    async with gemini(stub) as llm:
        assert "".join([d async for d in llm.stream(MESSAGES, model=model)]) == (
            "페트병은 라벨을 떼세요."
        )
    assert moved(before, tokens("gemini", model)) == (19, 6)


async def test_the_local_provider_counts_characters_over_four():
    llm = LocalLLM()
    prompt = sum(estimate_tokens(m.content) for m in MESSAGES)
    before = tokens("local", "local")
    reply = await llm.complete(MESSAGES, model="local")
    streamed = "".join([d async for d in llm.stream(MESSAGES, model="local")])
    assert streamed == reply.text
    assert moved(before, tokens("local", "local")) == (2 * prompt, 2 * estimate_tokens(reply.text))


def test_estimate_rounds_up():
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]
