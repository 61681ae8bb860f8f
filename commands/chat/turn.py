"""The chat turn handler: ``SendChatMessage`` / ``ProvideInput`` → one run of the chat graph.

A turn is a loop over its recorded state (``TurnState``), like the scan chain:

1. queue it: the user's message on the chat (``MessageRecorded``, id of the turn's step) and
   ``TurnQueued`` on the turn;
2. run the graph with the last 10 messages before this turn and the previous intent (both
   folded from the chat's events), appending node progress, the answer as coalesced deltas, and
   at the end the assistant's message on the chat, then ``TurnCompleted``;
3. or stop at ``NeedsInput`` with ``TurnWaiting`` and return — no worker waits for the user;
   ``ProvideInput`` records ``InputReceived`` and runs the turn again with the location.

Redelivery never duplicates: recorded steps keep their ids, committed text is continued, never
repeated (``AnswerText``), a finished or waiting turn is a no-op, and an assistant message
already recorded finishes the turn without running the graph again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Protocol

import schemas
from agents.chat.turn import GeoPoint, HistoryItem, NeedsInput, TurnAborted, TurnInput, TurnResult
from commands.chat.session import load_chat
from commands.chat.stream import AnswerStream, ChatUpdate, GraphCrashed
from commands.chat.text import Coalescing, StreamingTurns
from commands.chat.turn_state import (
    assistant_message_id,
    load_turn,
    turn_effect,
    user_message_id,
)
from commands.chat.writer import TurnMoved, TurnWriter
from eventstore.causation import caused_by
from eventstore.consumer import RetryLater
from eventstore.port import EventStorePort
from eventstore.store import ANY
from schemas.chat import (
    CHAT,
    InputReceived,
    MessageRecorded,
    Persistence,
    ProvideInput,
    SendChatMessage,
    TurnCompleted,
    TurnFailed,
    TurnOutcome,
    TurnQueued,
)
from schemas.chat_state import ChatSession, TurnState
from schemas.envelope import Envelope
from schemas.registry import MessageRegistry

log = logging.getLogger(__name__)

MAX_ROUNDS = 8  # runs after someone else moved the turn; then the runner delivers it again

CHAT_NOT_FOUND = "대화를 찾을 수 없어요. 새 대화에서 다시 질문해 주세요."
INTERNAL_ERROR = "답변을 만드는 중 문제가 생겼어요. 잠시 후 다시 시도해 주세요."
NO_ANSWER = "답변을 만들지 못했어요. 질문을 조금 바꿔서 다시 시도해 주세요."
CANCELLED = "요청을 취소했어요. 다른 질문이 있으면 편하게 물어봐 주세요."


class ChatGraph(Protocol):
    """The chat graph (``agents.chat``): one stateless run per turn."""

    def run_into(self, turn: TurnInput, put: Callable[[ChatUpdate], None]) -> Awaitable[None]:
        """Put progress, answer deltas, then one ``TurnResult`` or ``NeedsInput``; raises the
        graph's ``TurnAborted`` when a CLOSE node failed."""
        ...


DEFAULT_COALESCING = Coalescing()


async def handle_send_message(
    envelope: Envelope,
    command: SendChatMessage,
    *,
    store: EventStorePort,
    graph: ChatGraph,
    registry: MessageRegistry = schemas.registry,
    coalescing: Coalescing = DEFAULT_COALESCING,
    turns: StreamingTurns | None = None,
) -> None:
    """Run the turn of ``command`` from wherever it stands (no-op when finished or waiting).
    ``turns`` counts the process's streaming turns (the worker shares one; it paces deltas)."""
    turn = await load_turn(store, command.job_id, registry)
    chat = None
    if turn.queued is None:
        turn, chat = await _queue(envelope, command, turn, store=store, registry=registry)
    await _run_turn(envelope, turn, store=store, graph=graph, registry=registry,
                    coalescing=coalescing, turns=turns or StreamingTurns(), chat=chat)


async def handle_provide_input(
    envelope: Envelope,
    command: ProvideInput,
    *,
    store: EventStorePort,
    graph: ChatGraph,
    registry: MessageRegistry = schemas.registry,
    coalescing: Coalescing = DEFAULT_COALESCING,
    turns: StreamingTurns | None = None,
) -> None:
    """Resume the turn waiting at ``command.waiting_version`` (no-op for any other state)."""
    turn = await load_turn(store, command.job_id, registry)
    if turn.queued is None or turn.finished:
        return
    if turn.is_waiting:
        if turn.waiting_version != command.waiting_version:
            return  # an answer to an earlier question
        writer = TurnWriter(store, registry, turn, cause=envelope, user_id=turn.queued.user_id)
        received = InputReceived(type=command.type, data=command.data, location=command.location)
        try:
            await writer.append(received, "input", str(command.waiting_version))
        except TurnMoved:
            turn = await load_turn(store, command.job_id, registry)
    elif turn.input_version <= command.waiting_version:
        return  # not answered by this command: nothing of ours to continue
    await _run_turn(envelope, turn, store=store, graph=graph, registry=registry,
                    coalescing=coalescing, turns=turns or StreamingTurns())


async def _queue(
    envelope: Envelope,
    command: SendChatMessage,
    turn: TurnState,
    *,
    store: EventStorePort,
    registry: MessageRegistry,
) -> tuple[TurnState, ChatSession | None]:
    """Record the user's message on the chat, then ``TurnQueued`` (a failed ``done`` instead
    when the chat is gone or not the user's). Also returns the chat as it was before this
    turn, which is exactly the history the turn's first run needs."""
    job_id = command.job_id
    chat = await load_chat(store, command.chat_id, registry)
    writer = TurnWriter(store, registry, turn, cause=envelope, user_id=command.user_id)
    queued = TurnQueued(
        chat_id=command.chat_id, user_id=command.user_id, message=command.message,
        image_url=command.image_url, user_location=command.user_location, model=command.model,
        user_message_id=user_message_id(job_id),
    )
    if chat.visible_to(command.user_id):
        user_message = MessageRecorded(
            message_id=user_message_id(job_id), role="user", content=command.message,
            image_url=command.image_url, metadata={"job_id": job_id}, turn_id=job_id,
        )
        await _record_on_chat(store, registry, chat.chat_id, user_message, "user_message",
                              job_id=job_id, cause=envelope, user_id=command.user_id)
    try:
        await writer.append(queued, "queued")
        if not chat.visible_to(command.user_id):
            failed = TurnFailed(user_id=command.user_id, chat_id=command.chat_id,
                                message=CHAT_NOT_FOUND, code="chat_not_found")
            await writer.append(failed, "failed")
    except TurnMoved:
        return await load_turn(store, job_id, registry), None
    return writer.turn, chat


async def _run_turn(
    envelope: Envelope,
    turn: TurnState,
    *,
    store: EventStorePort,
    graph: ChatGraph,
    registry: MessageRegistry,
    coalescing: Coalescing,
    turns: StreamingTurns,
    chat: ChatSession | None = None,
) -> None:
    for _ in range(MAX_ROUNDS):
        if turn.queued is None or turn.finished or turn.is_waiting:
            return
        try:
            await _run_once(envelope, turn, store=store, graph=graph, registry=registry,
                            coalescing=coalescing, turns=turns, chat=chat)
            return
        except TurnMoved as exc:
            log.info("turn %s moved under this run (%s); re-reading it", turn.job_id, exc)
            turn, chat = await load_turn(store, turn.job_id, registry), None
    raise RetryLater(f"turn {turn.job_id} kept changing; trying again later")


async def _run_once(
    envelope: Envelope,
    turn: TurnState,
    *,
    store: EventStorePort,
    graph: ChatGraph,
    registry: MessageRegistry,
    coalescing: Coalescing,
    turns: StreamingTurns,
    chat: ChatSession | None = None,
) -> None:
    queued = turn.queued
    assert queued is not None
    writer = TurnWriter(store, registry, turn, cause=envelope, user_id=queued.user_id)
    if chat is None:
        chat = await load_chat(store, queued.chat_id, registry)
    recorded = chat.message(assistant_message_id(turn.job_id))
    if recorded is not None:  # the answer is on the chat already: only `done` is missing
        outcome = _outcome(turn, chat, recorded.content, recorded.intent or "general",
                           recorded.metadata, recorded.created_at)
        await writer.append(_completed(turn, outcome), "completed")
        return
    stream = AnswerStream(writer, coalescing, turns)
    if turn.cancelled:
        end: TurnResult | NeedsInput | None = TurnResult(intent="general", intents=[],
                                                         answer=CANCELLED)
    else:
        try:
            turn_input = _turn_input(turn, chat)
            end = await stream.consume(lambda put: graph.run_into(turn_input, put))
        except TurnAborted as exc:
            await stream.fail(exc.message, "node_failed")
            return
        except GraphCrashed:
            # A bug or an unguarded failure in the graph: the user is told, never left waiting.
            log.exception("chat turn %s: the graph crashed", turn.job_id)
            await stream.fail(INTERNAL_ERROR, "internal_error")
            return
    if isinstance(end, NeedsInput):
        return  # TurnWaiting is recorded; ProvideInput runs the turn again
    if end is None:
        await stream.fail(NO_ANSWER, "no_answer")
        return
    answer_text = await stream.finish(end.answer)
    metadata: dict[str, object] = {
        "job_id": turn.job_id, "intents": list(end.intents), "subagents": list(end.subagents),
        "skipped": list(end.skipped), "sources": list(end.sources),
    }
    if end.model_fallback is not None:  # the requested model was not served (the graph logs it)
        metadata["model_fallback"] = dict(end.model_fallback)
    answer = MessageRecorded(
        message_id=assistant_message_id(turn.job_id), role="assistant", content=answer_text,
        intent=end.intent, metadata=metadata, turn_id=turn.job_id,
    )
    created_at = await _record_on_chat(
        store, registry, queued.chat_id, answer, "assistant_message",
        job_id=turn.job_id, cause=envelope, user_id=queued.user_id,
    )
    outcome = _outcome(turn, chat, answer_text, end.intent, metadata, created_at)
    await writer.append(_completed(turn, outcome), "completed")


def _turn_input(turn: TurnState, chat: ChatSession) -> TurnInput:
    queued = turn.queued
    assert queued is not None
    location = turn.location
    return TurnInput(
        chat_id=queued.chat_id,
        user_id=queued.user_id,
        message=queued.message,
        image_url=queued.image_url,
        location=GeoPoint(latitude=location.latitude, longitude=location.longitude)
        if location else None,
        history=[
            HistoryItem(role="assistant" if m.role == "assistant" else "user",
                        content=m.content, intent=m.intent)
            for m in chat.history_for(turn.job_id)
        ],
        previous_intent=chat.previous_intent(turn.job_id),
        model=queued.model,
    )


def _outcome(
    turn: TurnState, chat: ChatSession, answer: str, intent: str,
    metadata: dict[str, object], created_at: float,
) -> TurnOutcome:
    def names(key: str) -> list[object]:
        value = metadata.get(key)
        return list(value) if isinstance(value, list) else []

    return TurnOutcome(
        intent=intent,
        intents=[str(i) for i in names("intents")],
        answer=answer,
        subagents=[str(s) for s in names("subagents")],
        skipped=names("skipped"),
        sources=names("sources"),
        persistence=Persistence(
            conversation_id=chat.chat_id,
            user_message=user_message_id(turn.job_id),
            assistant_message=assistant_message_id(turn.job_id),
            assistant_message_created_at=datetime.fromtimestamp(created_at, UTC).isoformat(),
        ),
    )


def _completed(turn: TurnState, outcome: TurnOutcome) -> TurnCompleted:
    queued = turn.queued
    assert queued is not None
    return TurnCompleted(user_id=queued.user_id, chat_id=queued.chat_id, result=outcome)


async def _record_on_chat(
    store: EventStorePort,
    registry: MessageRegistry,
    chat_id: str,
    event: MessageRecorded,
    step: str,
    *,
    job_id: str,
    cause: Envelope,
    user_id: str,
) -> float:
    """Record a message on the chat once (its id is the turn's step); when it was recorded."""
    envelope = registry.envelope(
        event, aggregate_id=chat_id, aggregate_type=CHAT,
        metadata=caused_by(cause, user_id), id=turn_effect(job_id, step),
    )
    result = await store.append([envelope], expected_version=ANY)
    if not result.duplicate:
        return envelope.timestamp
    chat = await load_chat(store, chat_id, registry)
    recorded = chat.message(event.message_id)
    return recorded.created_at if recorded else envelope.timestamp
