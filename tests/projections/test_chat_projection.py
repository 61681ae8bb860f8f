"""The ``chat`` read model: sessions and messages projected from real turns, its queries, and
a verify (replay from position 0) that reproduces it exactly."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from commands.chat.scripted import ScriptedChatGraph
from commands.chat.turn import Coalescing, handle_send_message
from eventstore.store import ANY, EventStore
from projections import chat as read
from projections.chat import CHAT
from projections.context import ReadSide
from projections.metrics import ProjectionMetrics
from projections.runner import ProjectorService
from projections.verify import verify
from projections.worker import ProjectorOptions
from schemas.chat import CHAT as CHAT_AGG
from schemas.chat import CHAT_TURN, ChatCreated, ChatDeleted, ChatRenamed, SendChatMessage
from schemas.registry import Event
from tests.background import in_background
from tests.projections.helpers import wait_caught_up

pytestmark = [pytest.mark.redis, pytest.mark.postgres]
FAST = ProjectorOptions(batch_size=200, block_ms=200, lease_retry_s=0.1)


@pytest.fixture
async def projector(side: ReadSide) -> AsyncIterator[None]:
    metrics = ProjectionMetrics.create(CollectorRegistry())
    async with in_background(ProjectorService(side, [CHAT], options=FAST, metrics=metrics).run()):
        yield


async def chat_event(side: ReadSide, store: EventStore, chat_id: str, event: Event) -> None:
    envelope = side.registry.envelope(event, aggregate_id=chat_id, aggregate_type=CHAT_AGG)
    await store.append([envelope], expected_version=ANY)


async def ask(side: ReadSide, store: EventStore, chat_id: str, user: str, text: str) -> None:
    job_id = str(uuid.uuid4())
    command = SendChatMessage(job_id=job_id, chat_id=chat_id, user_id=user, message=text)
    envelope = side.registry.envelope(command, aggregate_id=job_id, aggregate_type=CHAT_TURN)
    await handle_send_message(envelope, command, store=store, graph=ScriptedChatGraph(),
                              coalescing=Coalescing())


async def test_chats_and_messages_are_projected_and_verify_clean(
    side: ReadSide, store: EventStore, projector: None
) -> None:
    alice, bob = "alice", "bob"
    first, second, gone, bobs = (str(uuid.uuid4()) for _ in range(4))
    await chat_event(side, store, first, ChatCreated(user_id=alice, title=None))
    await chat_event(side, store, second, ChatCreated(user_id=alice, title="분리수거 질문"))
    await chat_event(side, store, gone, ChatCreated(user_id=alice, title="지울 대화"))
    await chat_event(side, store, bobs, ChatCreated(user_id=bob, title=None))
    await ask(side, store, first, alice, "페트병 어떻게 버려?")
    await ask(side, store, first, alice, "뚜껑은?")
    await ask(side, store, gone, alice, "지워질 질문")
    await chat_event(side, store, gone, ChatDeleted())
    await ask(side, store, bobs, bob, "밥의 질문")
    await ask(side, store, second, alice, "스티로폼은?")
    await chat_event(side, store, second, ChatRenamed(title="스티로폼"))
    await wait_caught_up(side, names=["chat"])

    pool = side.pool
    listed = await read.list_chats(pool, alice, limit=10)
    assert [c.id for c in listed] == [second, first]  # most recent activity first, no deleted
    assert listed[0].title == "스티로폼" and listed[1].title == "페트병 어떻게 버려?"
    assert listed[1].message_count == 4 and listed[1].preview
    page = await read.list_chats(pool, alice, limit=1)
    rest = await read.list_chats(pool, alice, limit=1, after=(page[0].activity, page[0].id))
    assert [c.id for c in page + rest] == [second, first]

    newest = await read.list_messages(pool, first, limit=3)
    assert [m.role for m in newest] == ["assistant", "user", "assistant"]
    assert newest[1].content == "뚜껑은?" and newest[0].intent == "waste"
    assert newest[0].metadata["subagents"] == ["waste_rag"]
    older = await read.list_messages(pool, first, limit=3,
                                     before=(newest[-1].created_at, newest[-1].id))
    assert [m.content for m in older] == ["페트병 어떻게 버려?"]
    assert await read.list_messages(pool, gone, limit=10) == []  # deleted with its chat
    assert (await read.get_chat(pool, gone)).deleted  # type: ignore[union-attr]

    last = await store.read_aggregate(first)
    shard, position = side.layout.shard_of(first), last[-1].position or 0
    assert await read.caught_up(pool, shard, position)
    assert not await read.caught_up(pool, shard, position + 10_000)

    report = await verify(side, CHAT)
    assert report.clean, report
