"""provider_for, ModelRouter (against real adapters on wire stubs) and the retry policy."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest

from agents.llm.gemini_adapter import GeminiAdapter
from agents.llm.openai_adapter import OpenAIAdapter
from agents.llm.ports import (
    ChatMessage,
    Completion,
    ImageInput,
    LLMUnavailable,
    T,
    ToolSpec,
    VisionResult,
)
from agents.llm.providers import ModelRouter, UnknownModelError, VisionReply, provider_for
from agents.llm.retry import Retryable, RetryPolicy, call_with_retries, stream_with_retries
from schemas.classification import Classification
from tests.agents.wirestub import Reply, WireStub, gemini_wire, openai_wire

MESSAGES = [ChatMessage(role="user", content="페트병 어떻게 버려?")]


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("local", "local"),
        ("", "local"),
        (None, "local"),
        ("gpt-4o-mini", "openai"),
        ("gpt-5", "openai"),
        ("GPT-4.1", "openai"),
        ("o1", "openai"),
        ("o3-mini", "openai"),
        ("o4-mini-2025-04-16", "openai"),
        ("gemini-2.5-flash", "gemini"),
        ("gemini-3-pro-preview", "gemini"),
    ],
)
def test_provider_is_inferred_from_the_model_name(model, provider):
    assert provider_for(model) == provider


@pytest.mark.parametrize("model", ["claude-3", "llama3", "gemma-2", "omni", "gpt4"])
def test_an_unknown_model_is_a_clear_error(model):
    with pytest.raises(UnknownModelError, match="unknown model"):
        provider_for(model)


class RecordingLocal:
    """A stand-in for the local adapter: records which calls reached it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        model: str | None = None,
        tools: Sequence[ToolSpec] = (),
    ) -> Completion:
        self.calls.append(("complete", model))
        return Completion(text="local")

    async def structured(
        self, messages: Sequence[ChatMessage], schema: type[T], *, model: str | None = None
    ) -> T:
        self.calls.append(("structured", model))
        return schema.model_validate({})

    async def stream(
        self, messages: Sequence[ChatMessage], *, model: str | None = None
    ) -> AsyncIterator[str]:
        self.calls.append(("stream", model))
        yield "local"

    async def classify(
        self, image: ImageInput, *, hint: str | None = None, model: str | None = None
    ) -> VisionResult:
        self.calls.append(("classify", model))
        return VisionResult(
            classification=Classification(major_category="미분류"), question="무엇인가요?"
        )


@pytest.fixture
def stubs() -> Iterator[tuple[WireStub, WireStub]]:
    with WireStub() as openai_stub, WireStub() as gemini_stub:
        yield openai_stub, gemini_stub


@pytest.fixture
async def router(stubs) -> AsyncIterator[tuple[ModelRouter, RecordingLocal]]:
    openai_stub, gemini_stub = stubs
    local = RecordingLocal()
    async with (
        OpenAIAdapter("sk", openai_stub.url("/v1"), timeout_s=2, retry_base_delay_s=0.01) as oa,
        GeminiAdapter("g", gemini_stub.base_url, timeout_s=2, retry_base_delay_s=0.01) as gm,
    ):
        llms = {"local": local, "openai": oa, "gemini": gm}
        yield ModelRouter(default_model="gpt-4o-mini", llms=llms, visions=llms), local


@pytest.mark.asyncio
async def test_the_call_s_model_selects_the_provider(stubs, router):
    openai_stub, gemini_stub = stubs
    model_router, local = router
    openai_stub.enqueue(Reply.json(openai_wire.chat_completion("from openai")))
    gemini_stub.enqueue(Reply.json(gemini_wire.generate_response("from gemini")))

    assert (await model_router.complete(MESSAGES)).text == "from openai"  # the default model
    assert (await model_router.complete(MESSAGES, model="gemini-2.5-flash")).text == "from gemini"
    assert (await model_router.complete(MESSAGES, model="local")).text == "local"

    assert openai_stub.requests[0].json()["model"] == "gpt-4o-mini"
    assert gemini_stub.requests[0].path == gemini_wire.generate_path("gemini-2.5-flash")
    assert local.calls == [("complete", "local")]


@pytest.mark.asyncio
async def test_streams_structured_and_vision_are_routed_too(stubs, router):
    openai_stub, gemini_stub = stubs
    model_router, local = router
    gemini_stub.enqueue(Reply.sse(gemini_wire.stream_chunks(["제미", "나이"])))
    openai_stub.enqueue(
        Reply.json(
            openai_wire.chat_completion(
                '{"major_category": "재활용폐기물", "middle_category": "종이", "minor_category": "택배상자",'
                ' "situation_tags": [], "confidence": 0.9, "question": ""}'
            )
        )
    )

    assert [d async for d in model_router.stream(MESSAGES, model="gemini-2.5-flash")] == [
        "제미",
        "나이",
    ]
    seen = await model_router.classify(ImageInput(data=b"box"), model="gpt-4.1-mini")
    assert seen.classification.middle_category == "종이"
    await model_router.classify(ImageInput(filename="x.jpg"), model="local")
    assert [d async for d in model_router.stream(MESSAGES, model="local")] == ["local"]

    assert openai_stub.requests[0].json()["model"] == "gpt-4.1-mini"
    assert local.calls == [("classify", "local"), ("stream", "local")]


@pytest.mark.asyncio
async def test_a_provider_that_is_not_configured_is_unavailable():
    local = RecordingLocal()
    model_router = ModelRouter(
        default_model="local", llms={"local": local}, visions={"local": local}
    )

    assert model_router.supports(None) and model_router.supports("local")
    assert not model_router.supports("gpt-4o") and not model_router.supports("claude-3")
    with pytest.raises(LLMUnavailable, match="openai provider"):
        await model_router.complete(MESSAGES, model="gpt-4o")
    with pytest.raises(LLMUnavailable, match="gemini provider"):
        [d async for d in model_router.stream(MESSAGES, model="gemini-2.5-flash")]
    with pytest.raises(UnknownModelError):
        await model_router.classify(ImageInput(data=b"x"), model="claude-3")
    assert local.calls == []


def test_a_misspelt_or_unconfigured_default_model_fails_at_construction():
    local = RecordingLocal()
    with pytest.raises(UnknownModelError):
        ModelRouter(default_model="gtp-4o", llms={"local": local}, visions={"local": local})
    with pytest.raises(ValueError, match="openai provider"):
        ModelRouter(default_model="gpt-4o", llms={"local": local}, visions={"local": local})


def test_backoff_is_exponential_bounded_and_honours_retry_after():
    policy = RetryPolicy(retries=5, base_delay_s=0.5, max_delay_s=3.0)
    assert [policy.delay(n) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert policy.delay(0, retry_after_s=2.0) == 2.0
    assert policy.delay(0, retry_after_s=60.0) == 3.0  # never beyond the cap


@pytest.mark.asyncio
async def test_retry_loop_retries_only_retryable_failures():
    attempts: list[int] = []

    async def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise Retryable("busy")
        return "ok"

    assert await call_with_retries(flaky, RetryPolicy(2, 0.0), what="t") == "ok"
    assert len(attempts) == 3

    async def broken() -> str:
        attempts.append(1)
        raise LLMUnavailable("HTTP 401")

    attempts.clear()
    with pytest.raises(LLMUnavailable, match="401"):
        await call_with_retries(broken, RetryPolicy(2, 0.0), what="t")
    assert len(attempts) == 1


@pytest.mark.asyncio
async def test_a_consumer_leaving_a_stream_early_closes_it():
    closed: list[bool] = []

    async def deltas() -> AsyncIterator[str]:
        try:
            for d in ["a", "b", "c"]:
                yield d
        finally:
            closed.append(True)

    stream = stream_with_retries(deltas, RetryPolicy(0, 0.0), what="t")
    async for delta in stream:
        assert delta == "a"
        break
    await stream.aclose()
    assert closed == [True]


@pytest.mark.asyncio
async def test_retry_waits_follow_the_policy():
    async def always_busy() -> None:
        raise Retryable("busy")

    started = time.monotonic()
    with pytest.raises(LLMUnavailable, match="after 3 attempts"):
        await call_with_retries(always_busy, RetryPolicy(2, 0.05, 1.0), what="t")
    # 0.05 + 0.1; two waits at the 1.0 s cap would be 2 s (the slack is for a loaded machine)
    assert 0.14 <= time.monotonic() - started < 1.9


def test_a_vision_reply_is_clamped_and_an_unclassified_one_always_asks():
    reply = VisionReply(
        major_category="미분류",
        middle_category="",
        minor_category="",
        situation_tags=[],
        confidence=1.7,
        question=" ",
    )
    result = reply.to_result()
    assert result.confidence == 1.0
    assert result.classification.is_unclassified and result.question


@pytest.mark.asyncio
async def test_every_call_is_measured_by_provider_model_and_outcome(stubs, router):
    from prometheus_client import REGISTRY

    openai_stub, _ = stubs
    model_router, _ = router

    def count(outcome: str) -> float:
        labels = {"provider": "openai", "model": "gpt-4o-mini", "operation": "chat",
                  "outcome": outcome}
        return REGISTRY.get_sample_value("eco2_llm_call_duration_seconds_count", labels) or 0.0

    def errors() -> float:
        return sum(sample.value for metric in REGISTRY.collect()
                   if metric.name == "eco2_llm_errors" for sample in metric.samples
                   if sample.name == "eco2_llm_errors_total"
                   and sample.labels["provider"] == "openai")

    ok, failed, errored = count("ok"), count("error"), errors()
    openai_stub.enqueue(Reply.json(openai_wire.chat_completion("fine")))
    await model_router.complete(MESSAGES)
    openai_stub.enqueue(Reply.json({"error": {"message": "no", "type": "invalid"}}, status=400))
    with pytest.raises(LLMUnavailable):
        await model_router.complete(MESSAGES)
    assert (count("ok"), count("error"), errors()) == (ok + 1, failed + 1, errored + 1)
