"""The graph's own nodes before the fan-out: intent classification and the chat image."""

from __future__ import annotations

from agents.chat.deps import ChatDeps
from agents.chat.errors import NodeFailed
from agents.chat.intents import Intent, IntentDecision, LLMIntentClassifier, SubQuery
from agents.chat.intents.refine import refine
from agents.chat.policies import NodeGuard
from agents.chat.stages import Emit, failure_message
from agents.chat.turn import NeedsInput, NodeUpdate, TurnInput
from agents.llm.providers import UnknownModelError, provider_for

LOCATION_INTENTS = frozenset({Intent.LOCATION, Intent.COLLECTION_POINT})
NEEDS_LOCATION = "가까운 곳을 찾으려면 현재 위치가 필요해요. 위치 공유를 허용해 주세요."


def _previous(turn: TurnInput) -> Intent | None:
    try:
        return Intent(turn.previous_intent) if turn.previous_intent else None
    except ValueError:
        return None


def _remote(turn: TurnInput, deps: ChatDeps) -> bool:
    try:
        return provider_for(turn.model or deps.default_model) != "local"
    except UnknownModelError:
        return False


async def classify(
    turn: TurnInput, deps: ChatDeps, guard: NodeGuard, emit: Emit
) -> dict[str, object]:
    """The ``intent`` node: sub-queries and intents; asks for the location when one is needed."""
    emit(NodeUpdate(node="intent", status="started"))
    previous = _previous(turn)
    classifier = "local"
    decision: IntentDecision | None = None
    fallback_note: str | None = None
    if deps.classify_with_llm and _remote(turn, deps):
        llm_intents = LLMIntentClassifier(deps.llm, model=turn.model or deps.default_model)
        try:
            decision = await guard.call(
                "intent", lambda: llm_intents.classify(turn.message, previous_intent=previous)
            )
            classifier = "llm"
        except NodeFailed as exc:  # FALLBACK: the local classifier decides instead
            fallback_note = failure_message("intent", exc.reason, guard.policy("intent").fail_mode)
    if decision is None:
        decision = await deps.intents.classify(turn.message, previous_intent=previous)
    decision = refine(decision, turn.message, turn.history, deps.kb.match)
    if turn.image_url and decision.intents == {Intent.GENERAL}:
        # a photo with "이거 뭐야?" is a disposal question about the photo
        decision = IntentDecision(
            sub_queries=[
                SubQuery(
                    intent=Intent.WASTE,
                    text=turn.message or "이거 어떻게 버려?",
                    confidence=decision.sub_queries[0].confidence,
                )
            ],
            primary=Intent.WASTE,
            is_multi=False,
        )
    needs = (
        NeedsInput(message=NEEDS_LOCATION)
        if (turn.location is None and decision.intents & LOCATION_INTENTS)
        else None
    )
    emit(
        NodeUpdate(
            node="intent",
            status="completed",
            message=fallback_note,
            detail={
                "intent": decision.primary.value,
                "intents": [i.value for i in decision.ordered_intents],
                "multi": decision.is_multi,
                "sub_queries": [
                    {"intent": s.intent.value, "text": s.text, "confidence": round(s.confidence, 3)}
                    for s in decision.sub_queries
                ],
                "classifier": classifier,
                "needs_input": needs is not None,
            },
        )
    )
    return {"decision": decision, "classifier": classifier, "needs_input": needs}


async def read_image(
    turn: TurnInput, deps: ChatDeps, guard: NodeGuard, emit: Emit
) -> dict[str, object]:
    """The ``vision`` node: what the chat image shows, as a hint for the subagents (OPEN)."""
    vision = deps.vision
    if vision is None or not turn.image_url:
        return {}
    image_url = turn.image_url
    if guard.breaker("vision").state == "open":
        message = failure_message("vision", "circuit_open", guard.policy("vision").fail_mode)
        emit(
            NodeUpdate(
                node="vision", status="skipped", message=message, detail={"reason": "circuit_open"}
            )
        )
        return {}
    emit(NodeUpdate(node="vision", status="started"))
    image = await deps.media.load_image(image_url)
    if image is None:
        emit(
            NodeUpdate(
                node="vision",
                status="skipped",
                message="이미지를 찾을 수 없어 글만 보고 답할게요.",
                detail={"reason": "image_not_found"},
            )
        )
        return {}
    try:
        result = await guard.call(
            "vision", lambda: vision.classify(image, hint=turn.message or None, model=turn.model)
        )
    except NodeFailed as exc:
        message = failure_message("vision", exc.reason, guard.policy("vision").fail_mode)
        emit(
            NodeUpdate(
                node="vision", status="skipped", message=message, detail={"reason": exc.reason}
            )
        )
        return {}
    c = result.classification
    hint = None if c.is_unclassified else (c.minor_category or c.middle_category or None)
    emit(
        NodeUpdate(
            node="vision",
            status="completed",
            detail={
                "major_category": c.major_category,
                "middle_category": c.middle_category,
                "minor_category": c.minor_category,
                "confidence": result.confidence,
            },
        )
    )
    return {"item_hint": hint, "vision_question": result.question}
