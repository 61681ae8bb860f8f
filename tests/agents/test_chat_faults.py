"""Fault tests: subagents that time out, raise or have an open breaker; CLOSE failures.

The node a test makes hang gets a 60 ms timeout so it times out fast; every other node gets
10 s, since a node that works (the offline knowledge base, the local LLM) can take longer than
60 ms on a loaded machine and must not time out spuriously. The breaker's clock is a
``ManualClock`` moved by hand.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from agents.chat import (
    ChatDeps,
    GeoPoint,
    NodeUpdate,
    Token,
    TurnAborted,
    TurnInput,
    TurnResult,
    build_chat_graph,
    offline_chat_deps,
)
from agents.chat.answer import stream_answer
from agents.chat.errors import SourceUnavailable
from agents.chat.intents import LocalIntentClassifier
from agents.chat.policies import POLICIES, ManualClock, NodeGuard, NodePolicy
from agents.knowledge import KnowledgeBase
from agents.llm.local import LocalLLM
from characters import CharacterServiceUnavailable
from tests.agents.stubs.twins import FlakyLLM, Misbehaving

pytestmark = pytest.mark.asyncio

CITY_HALL = GeoPoint(latitude=37.5663, longitude=126.9779)
PET_AND_BINS = "페트병 어떻게 버려? 근처 수거함도 알려줘"


def fast_policies(*timing_out: str, **overrides: NodePolicy) -> dict[str, NodePolicy]:
    """DOMAIN's retries/breakers/fail modes; 60 ms timeouts for the ``timing_out`` nodes, 10 s
    for the others."""
    policies = {
        n: dataclasses.replace(p, timeout_ms=60 if n in timing_out else 10_000)
        for n, p in POLICIES.items()
    }
    policies.update(overrides)
    return policies


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


@pytest.fixture(scope="module")
def intents() -> LocalIntentClassifier:
    return LocalIntentClassifier()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def deps(kb: KnowledgeBase, intents: LocalIntentClassifier, clock: ManualClock) -> ChatDeps:
    return dataclasses.replace(
        offline_chat_deps(kb, intents=intents, clock=clock), policies=fast_policies()
    )


def turn(message: str, **kw: Any) -> TurnInput:
    return TurnInput(chat_id="chat-1", user_id="user-1", message=message, **kw)


async def run(graph: Any, t: TurnInput) -> tuple[list[NodeUpdate], list[Token], Any]:
    updates: list[NodeUpdate] = []
    tokens: list[Token] = []
    terminal: list[Any] = []
    async for item in graph.run(t):
        if isinstance(item, NodeUpdate):
            updates.append(item)
        elif isinstance(item, Token):
            tokens.append(item)
        else:
            terminal.append(item)
    assert len(terminal) == 1
    return updates, tokens, terminal[0]


def of(updates: list[NodeUpdate], node: str) -> list[NodeUpdate]:
    return [u for u in updates if u.node == node]


async def test_timed_out_fallback_node_is_retried_then_the_chain_answers(deps: ChatDeps) -> None:
    locations = Misbehaving(deps.locations, "nearest", hang=True)
    graph = build_chat_graph(dataclasses.replace(
        deps, locations=locations, policies=fast_policies("collection_point")))
    updates, tokens, result = await run(graph, turn(PET_AND_BINS, location=CITY_HALL))

    assert isinstance(result, TurnResult)
    bins = of(updates, "collection_point")
    assert [u.status for u in bins] == ["started", "failed"]
    assert bins[-1].detail["reason"] == "timeout"
    assert bins[-1].detail["attempts"] == 3  # 1 + 2 retries (DOMAIN: collection_point retries 2)
    assert locations.calls == 3
    assert "다른 방법으로" in (bins[-1].message or "")
    # the fallback chain ran under its own stage names, marked as fallbacks
    chain = [u for u in updates if u.detail.get("fallback_for") == "collection_point"]
    assert [u.node for u in chain if u.status == "started"] == [
        "waste_rag",
        "web_search",
        "general",
    ]
    # the waste half is answered, the bins half ends in a clarifying question, nothing invented
    assert "무색페트병" in result.answer
    assert "수거함을 찾지 못했어요" in result.answer
    assert {"node": "collection_point", "reason": "timeout"}.items() <= result.skipped[0].items()
    assert "".join(t.content for t in tokens) == result.answer


async def test_raising_open_node_is_skipped_and_the_answer_says_so(deps: ChatDeps) -> None:
    characters = Misbehaving(deps.characters, "catalog", error=CharacterServiceUnavailable("down"))
    graph = build_chat_graph(dataclasses.replace(deps, characters=characters))
    updates, tokens, result = await run(graph, turn("캐릭터 뭐 있어? 그리고 페트병 어떻게 버려?"))

    char = of(updates, "character")
    assert [u.status for u in char] == ["started", "skipped"]
    assert char[-1].detail["reason"] == "error" and char[-1].detail["attempts"] == 2  # retries 1
    assert "빼고 답할게요" in (char[-1].message or "")
    assert result.intents == ["character", "waste"]
    assert result.subagents == ["waste_rag"]
    assert "캐릭터 정보를 지금은 가져올 수 없어 빼고 답했어요" in result.answer
    assert "무색페트병" in result.answer
    assert result.skipped == [{"node": "character", "reason": "error", "message": char[-1].message}]
    assert "".join(t.content for t in tokens) == result.answer


async def test_raising_rag_falls_back_to_the_llm(deps: ChatDeps) -> None:
    kb = Misbehaving(deps.kb, "search", error=SourceUnavailable("vector store down"))
    graph = build_chat_graph(dataclasses.replace(deps, kb=kb))
    updates, _, result = await run(graph, turn("택배 상자 어떻게 버려?"))
    assert [u.status for u in of(updates, "waste_rag")] == ["started", "failed"]
    assert of(updates, "web_search")[-1].status == "skipped"  # offline: not configured
    assert of(updates, "general")[-1].status == "completed"
    assert result.subagents == ["general"]
    assert "일반적인 안내로" in result.answer and "종이" in result.answer


async def test_open_breaker_skips_without_calling_and_closes_after_60s(
    deps: ChatDeps, clock: ManualClock
) -> None:
    policies = fast_policies(
        character=dataclasses.replace(fast_policies()["character"], breaker_failures=2)
    )
    characters = Misbehaving(deps.characters, "catalog", error=CharacterServiceUnavailable("down"))
    graph = build_chat_graph(dataclasses.replace(deps, characters=characters, policies=policies))
    ask = turn("캐릭터 뭐 있어?")

    for _ in range(2):  # two failed calls (each retried once) open the breaker
        await run(graph, ask)
    assert characters.calls == 4
    assert graph.guard.breaker("character").state == "open"

    clock.advance(59)
    updates, _, result = await run(graph, ask)
    char = of(updates, "character")
    assert [(u.status, u.detail["reason"]) for u in char] == [("skipped", "circuit_open")]
    assert characters.calls == 4  # not attempted
    assert result.skipped[0]["reason"] == "circuit_open"
    assert "잠시 차단됨" in result.answer

    clock.advance(1)  # 60 s after opening: half-open, a trial call goes through
    characters.error = None
    updates, _, result = await run(graph, ask)
    assert [u.status for u in of(updates, "character")] == ["started", "completed"]
    assert characters.calls == 5
    assert graph.guard.breaker("character").state == "closed"
    assert "13종" in result.answer


async def test_close_node_failure_fails_the_turn_with_a_readable_message(
    kb: KnowledgeBase, deps: ChatDeps
) -> None:
    llm = FlakyLLM(LocalLLM(kb), complete_failures=99)
    graph = build_chat_graph(dataclasses.replace(deps, llm=llm))
    updates: list[NodeUpdate] = []
    with pytest.raises(TurnAborted) as failed:
        async for item in graph.run(turn("우주는 얼마나 커?")):
            assert isinstance(item, NodeUpdate)  # no tokens, no result before the failure
            updates.append(item)
    assert failed.value.node == "general"
    assert "답변" in failed.value.message and "다시 시도" in failed.value.message
    assert llm.complete_calls == 3  # general: 2 retries
    assert of(updates, "general")[-1].status == "failed"


async def test_general_as_a_fallback_step_does_not_fail_the_turn(
    kb: KnowledgeBase, deps: ChatDeps
) -> None:
    llm = FlakyLLM(LocalLLM(kb), complete_failures=99)
    locations = Misbehaving(deps.locations, "nearest", error=SourceUnavailable("down"))
    graph = build_chat_graph(dataclasses.replace(deps, llm=llm, locations=locations))
    _, _, result = await run(graph, turn("근처 재활용센터 어디야", location=CITY_HALL))
    assert isinstance(result, TurnResult)
    assert "찾지 못했어요" in result.answer  # the chain's last step: a clarifying question
    assert [s["node"] for s in result.skipped] == ["location", "waste_rag", "web_search", "general"]


async def test_answer_retries_before_the_first_token(kb: KnowledgeBase, deps: ChatDeps) -> None:
    llm = FlakyLLM(LocalLLM(kb), stream_failures=1)
    graph = build_chat_graph(dataclasses.replace(deps, llm=llm))
    _, tokens, result = await run(graph, turn("택배 상자 어떻게 버려?"))
    assert llm.stream_calls == 2
    assert "".join(t.content for t in tokens) == result.answer


@pytest.mark.parametrize("flaky", [{"break_after": 3}, {"stall_s": 1.0}])
async def test_answer_failing_mid_stream_fails_the_turn(
    kb: KnowledgeBase, deps: ChatDeps, flaky: dict[str, Any]
) -> None:
    llm = FlakyLLM(LocalLLM(kb), **flaky)
    graph = build_chat_graph(dataclasses.replace(deps, llm=llm, policies=fast_policies("answer")))
    tokens: list[Token] = []
    updates: list[NodeUpdate] = []
    with pytest.raises(TurnAborted) as failed:
        async for item in graph.run(turn("택배 상자 어떻게 버려?")):
            if isinstance(item, Token):
                tokens.append(item)
            elif isinstance(item, NodeUpdate):
                updates.append(item)
    assert failed.value.node == "answer"
    assert tokens  # some text was out: no retry, it would repeat it
    assert llm.stream_calls == 1
    assert of(updates, "answer")[-1].status == "failed"


async def test_breaker_state_is_shared_across_turns_but_not_graphs(deps: ChatDeps) -> None:
    policies = fast_policies(
        weather=dataclasses.replace(fast_policies()["weather"], breaker_failures=1)
    )
    weather = Misbehaving(deps.weather, "current", error=SourceUnavailable("down"))
    deps = dataclasses.replace(deps, weather=weather, policies=policies)
    first = build_chat_graph(deps)
    await run(first, turn("오늘 날씨 어때?", location=CITY_HALL))
    assert first.guard.breaker("weather").state == "open"
    assert build_chat_graph(deps).guard.breaker("weather").state == "closed"


class _PacedLLM:
    """Streams ``pauses`` as deltas, each after its pause (seconds)."""

    def __init__(self, pauses: list[float]) -> None:
        self.pauses = pauses

    async def stream(self, messages: Any, *, model: str | None = None) -> Any:
        for i, pause in enumerate(self.pauses):
            await asyncio.sleep(pause)
            yield f"{i} "


@pytest.mark.parametrize(
    ("pauses", "fails"),
    [
        ([0.04] * 30, False),  # each wait far under the 1 s timeout, all of them over it
        ([0.0, 0.02, 60, 0.0], True),  # one wait past it, after text was out
        ([60], True),  # nothing streamed within it (retried, then failed)
    ],
)
async def test_answer_timeout_bounds_each_wait_not_the_whole_stream(
    pauses: list[float], fails: bool
) -> None:
    # 1 s, not less: a wait of 40 ms must not outlast it because a loaded machine stalled.
    policies = dict(POLICIES, answer=dataclasses.replace(POLICIES["answer"], timeout_ms=1000))
    updates: list[Any] = []
    call = stream_answer(
        _PacedLLM(pauses), [], model=None, fallback_text="-",
        guard=NodeGuard(policies, clock=ManualClock()), emit=updates.append,
    )
    if not fails:
        assert await call == "".join(f"{i} " for i in range(len(pauses)))
        return
    with pytest.raises(TurnAborted):
        await call
    failed = [u for u in updates if isinstance(u, NodeUpdate) and u.status == "failed"]
    assert failed[-1].detail["reason"] == "timeout"
