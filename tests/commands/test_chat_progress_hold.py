"""Progress staged alone waits for what follows (up to the coalescing interval): a turn's
progress before its answer goes out with the first delta in one append, and progress followed
by a long silence still goes out once its interval is over."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import schemas
from agents.chat.turn import NodeUpdate, Token, TurnInput, TurnResult
from commands.chat.stream import ChatUpdate
from commands.chat.text import Coalescing
from commands.chat.turn import handle_send_message
from eventstore.keys import Layout
from eventstore.memory import MemoryEventStore
from schemas.chat import (
    CHAT,
    CHAT_TURN,
    ChatCreated,
    NodeProgressed,
    SendChatMessage,
    TokensEmitted,
    TurnCompleted,
)
from schemas.envelope import Envelope


class CountingStore(MemoryEventStore):
    """The in-memory store, remembering the messages of each append."""

    def __init__(self) -> None:
        super().__init__(Layout(namespace="memory", shards=4), schemas.registry)
        self.appends: list[list[type]] = []

    async def append(self, envelopes: Sequence[Envelope], **kw: Any) -> Any:
        self.appends.append([type(schemas.registry.decode_envelope(e)) for e in envelopes])
        return await super().append(envelopes, **kw)


class StagedGraph:
    """Intent and answer progress, then (once ``go`` is set) the answer in two deltas."""

    def __init__(self) -> None:
        self.go = asyncio.Event()

    async def run_into(self, turn: TurnInput, put: Callable[[ChatUpdate], None]) -> None:
        put(NodeUpdate(node="intent", status="started"))
        await asyncio.sleep(0)
        put(NodeUpdate(node="intent", status="completed"))
        await asyncio.sleep(0)
        put(NodeUpdate(node="answer", status="started"))
        await self.go.wait()
        put(Token(content="페트병은 "))
        await asyncio.sleep(0)
        put(Token(content="헹궈서 버려요."))
        put(NodeUpdate(node="answer", status="completed"))
        put(TurnResult(intent="waste", intents=["waste"], answer="페트병은 헹궈서 버려요."))


async def _turn(store: CountingStore, graph: StagedGraph, coalescing: Coalescing) -> str:
    chat_id, job_id = str(uuid.uuid4()), str(uuid.uuid4())
    created = schemas.registry.envelope(ChatCreated(user_id="u", title=None),
                                        aggregate_id=chat_id, aggregate_type=CHAT)
    await store.append([created], expected_version=0)
    command = SendChatMessage(job_id=job_id, chat_id=chat_id, user_id="u", message="페트병?")
    envelope = schemas.registry.envelope(command, aggregate_id=job_id, aggregate_type=CHAT_TURN)
    await handle_send_message(envelope, command, store=store, graph=graph, coalescing=coalescing)
    return job_id


async def test_progress_before_the_answer_goes_out_with_the_first_delta() -> None:
    store, graph = CountingStore(), StagedGraph()
    graph.go.set()
    long = Coalescing(interval_s=60.0, max_interval_s=60.0)
    job_id = await _turn(store, graph, long)
    first_delta = next(a for a in store.appends if TokensEmitted in a)
    assert first_delta == [NodeProgressed] * 3 + [TokensEmitted]
    messages = [schemas.registry.decode_envelope(e) for e in await store.read_aggregate(job_id)]
    text = "".join(m.content for m in messages if isinstance(m, TokensEmitted))
    done = [m for m in messages if isinstance(m, TurnCompleted)]
    assert len(done) == 1 and text == done[0].result.answer


async def test_held_progress_goes_out_when_its_interval_is_over() -> None:
    store, graph = CountingStore(), StagedGraph()
    short = Coalescing(interval_s=0.01, max_interval_s=0.01)
    turn = asyncio.create_task(_turn(store, graph, short))
    # The graph is silent until released: its progress is written on its own all the same.
    while not any(NodeProgressed in a for a in store.appends):
        await asyncio.sleep(0.01)
    assert not turn.done()
    graph.go.set()
    await asyncio.wait_for(turn, 30)
    before_text = list(itertools.takewhile(lambda a: TokensEmitted not in a, store.appends))
    assert sum(a.count(NodeProgressed) for a in before_text) == 3  # all of it, before any text
