"""Running one subagent stage under its node policy, with progress updates.

``run_stage`` is the wrapper every subagent call goes through (fan-out, enrichment and the
fallback chain alike): it emits ``started`` / ``completed`` / ``failed`` / ``skipped``, applies
timeout, retries and breaker (``NodeGuard``) and turns a failure into an ``Outcome`` per the
node's fail mode — or into ``TurnAborted`` for a CLOSE node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from agents.chat.deps import ChatDeps
from agents.chat.errors import NodeFailed, TurnAborted
from agents.chat.korean import obj, subject
from agents.chat.policies import FailMode, NodeGuard
from agents.chat.state import Outcome
from agents.chat.subagents import (
    bulk_waste,
    character,
    collection_point,
    general,
    image_generation,
    location,
    recyclable_price,
    waste_rag,
    weather,
    web_search,
)
from agents.chat.subagents.base import Finding, SubTask
from agents.chat.turn import NodeStatus, NodeUpdate

Runner = Callable[[SubTask], Awaitable[Finding]]
Emit = Callable[[Any], None]

STAGE_FOR_INTENT: Mapping[str, str] = {
    "waste": "waste_rag",
    "character": "character",
    "location": "location",
    "bulk_waste": "bulk_waste",
    "recyclable_price": "recyclable_price",
    "collection_point": "collection_point",
    "weather": "weather",
    "image_generation": "image_generation",
    "web_search": "web_search",
    "general": "general",
}
SUBAGENT_STAGES = tuple(STAGE_FOR_INTENT.values())

LABELS: Mapping[str, str] = {
    "intent": "의도 분석 모델",
    "vision": "이미지 인식",
    "waste_rag": "분리배출 지식 검색",
    "character": "캐릭터 정보",
    "location": "주변 장소 검색",
    "bulk_waste": "대형폐기물 수수료 정보",
    "weather": "날씨 정보",
    "collection_point": "수거함 검색",
    "recyclable_price": "재활용품 시세 정보",
    "web_search": "웹 검색",
    "image_generation": "이미지 생성",
    "general": "답변 모델",
    "answer": "답변 모델",
}
_WHY = {
    "timeout": "응답이 늦어",
    "error": "오류가 나서",
    "bad_data": "알 수 없는 응답을 보내서",
    "circuit_open": "잠시 불안정해서",
    "not_configured": "연결되어 있지 않아",
}


def failure_message(stage: str, reason: str, mode: FailMode) -> str:
    """Korean: what happened to ``stage`` and what the turn does about it."""
    label = LABELS.get(stage, stage)
    if reason == "not_configured":
        head = f"지금은 {obj(label)} 가져올 수 없어요"
    else:
        head = f"{subject(label)} {_WHY.get(reason, '실패해서')} 쓰지 못했어요"
    tail = {
        FailMode.OPEN: "이 정보는 빼고 답할게요.",
        FailMode.FALLBACK: "다른 방법으로 찾아볼게요.",
        FailMode.CLOSE: "답변을 마칠 수 없어요.",
    }[mode]
    return f"{head}. {tail}"


_REASON = {
    "timeout": "응답 시간 초과",
    "error": "오류",
    "bad_data": "알 수 없는 응답",
    "circuit_open": "잠시 차단됨",
    "not_configured": "연결된 서비스 없음",
}

# General advice when a source cannot answer, so the user still gets something useful.
ADVICE = {
    "weather": (
        "날씨를 확인하지 못했을 때는: 종이류·의류는 비에 젖으면 재활용이 어려우니 비 소식이 "
        "있으면 다음 배출일에 내놓거나 덮어 두세요. 정확한 날씨는 기상청 날씨누리나 날씨 앱에서 "
        "확인할 수 있어요."
    ),
    "web_search": (
        "최신 정책·뉴스는 환경부 누리집(me.go.kr)이나 생활폐기물 분리배출 누리집(분리배출.kr), "
        "사는 곳 구청 공지에서 확인할 수 있어요."
    ),
}


def left_out_note(stage: str, reason: str) -> str:
    """Korean, for the answer: an asked-for piece that is missing and why."""
    label = LABELS.get(stage, stage)
    note = f"{obj(label)} 지금은 가져올 수 없어 빼고 답했어요 ({_REASON.get(reason, '실패')})."
    advice = ADVICE.get(stage)
    return f"{note} {advice}" if advice else note


def stage_runners(deps: ChatDeps) -> dict[str, Runner]:
    """Each subagent stage bound to its ports."""
    return {
        "waste_rag": lambda t: waste_rag.run(t, deps.kb),
        "character": lambda t: character.run(t, deps.characters, deps.kb),
        "location": lambda t: location.run(t, deps.locations),
        "collection_point": lambda t: collection_point.run(t, deps.locations),
        "bulk_waste": lambda t: bulk_waste.run(t, deps.bulk_waste),
        "recyclable_price": lambda t: recyclable_price.run(t, deps.prices),
        "weather": lambda t: weather.run(t, deps.weather),
        "web_search": lambda t: web_search.run(t, deps.web_search),
        "image_generation": lambda t: image_generation.run(t, deps.kb, deps.image_gen, deps.media),
        "general": lambda t: general.run(t, deps.llm),
    }


async def run_stage(
    task: SubTask,
    *,
    runner: Runner,
    guard: NodeGuard,
    emit: Emit,
    fallback_for: str | None = None,
    close_fails_turn: bool = True,
) -> Outcome:
    """Run one stage for one task under its policy; never raises except ``TurnAborted``."""
    stage = task.stage
    policy = guard.policy(stage)
    base: dict[str, Any] = {"intent": task.intent, "query": task.query}
    if task.enrichment:
        base["enrichment"] = True
    if fallback_for:
        base["fallback_for"] = fallback_for
    if guard.breaker(stage).state == "open":
        # not attempted at all: one "skipped", no "started"
        message = failure_message(stage, "circuit_open", policy.fail_mode)
        if policy.fail_mode is FailMode.CLOSE and close_fails_turn:
            emit(
                NodeUpdate(
                    node=stage,
                    status="failed",
                    message=message,
                    detail={**base, "reason": "circuit_open"},
                )
            )
            raise TurnAborted(_close_message(stage), node=stage)
        emit(
            NodeUpdate(
                node=stage,
                status="skipped",
                message=message,
                detail={**base, "reason": "circuit_open"},
            )
        )
        return _failed(task, "circuit_open", message)
    emit(NodeUpdate(node=stage, status="started", detail=base))
    try:
        finding = await guard.call(stage, lambda: runner(task))
    except NodeFailed as exc:
        message = failure_message(stage, exc.reason, policy.fail_mode)
        detail = {**base, "reason": exc.reason, "attempts": exc.attempts, "error": exc.detail[:200]}
        if policy.fail_mode is FailMode.CLOSE and close_fails_turn:
            emit(NodeUpdate(node=stage, status="failed", message=message, detail=detail))
            raise TurnAborted(_close_message(stage), node=stage) from exc
        status: NodeStatus = (
            "failed" if exc.reason in ("timeout", "error", "bad_data") else "skipped"
        )
        if policy.fail_mode is FailMode.OPEN:
            status = "skipped"
        emit(NodeUpdate(node=stage, status=status, message=message, detail=detail))
        return _failed(task, exc.reason, message)
    emit(
        NodeUpdate(
            node=stage,
            status="completed",
            detail={**base, "found": finding.found, **finding.detail},
        )
    )
    return Outcome(
        stage=stage,
        intent=task.intent,
        query=task.query,
        enrichment=task.enrichment,
        finding=finding,
    )


def _failed(task: SubTask, reason: str, message: str) -> Outcome:
    return Outcome(
        stage=task.stage,
        intent=task.intent,
        query=task.query,
        enrichment=task.enrichment,
        failure=reason,
        message=message,
    )


def _close_message(stage: str) -> str:
    return (
        f"{subject(LABELS.get(stage, stage))} 응답하지 않아 답변을 만들지 못했어요. "
        "잠시 후 다시 시도해 주세요."
    )
