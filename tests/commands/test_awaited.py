"""The ``awaited`` handlers against a real store: what each command records, once.

Sign-in, profile and chat-session commands are redelivered after a crash like any other, so
each effect has a deterministic id; the gateway finds the outcome by its ``causation_id``.
"""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

import schemas
from commands.awaited import awaited_subscription
from commands.chat.session import load_chat
from commands.users import load_user
from eventstore.keys import Layout
from eventstore.store import EventStore
from schemas.chat import CHAT, CreateChat, DeleteChat, RenameChat
from schemas.envelope import Envelope, Metadata
from schemas.registry import Command
from schemas.user_state import hashed_subject, user_id_for
from schemas.users import USER, DeleteUser, SignIn, UpdateProfile

pytestmark = pytest.mark.redis


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    return EventStore(redis_client, layout, schemas.registry)


def command(message: Command, aggregate_id: str, aggregate_type: str) -> Envelope:
    return schemas.registry.envelope(message, aggregate_id=aggregate_id,
                                     aggregate_type=aggregate_type, metadata=Metadata())


async def run(store: EventStore, envelope: Envelope) -> None:
    """Deliver ``envelope`` to its handler in the group, as the runner does."""
    message = schemas.registry.decode_envelope(envelope)
    await awaited_subscription(store).handlers[type(message)](envelope, message)


def sign_in(user_id: str) -> Envelope:
    return command(SignIn(user_id=user_id, provider="kakao",
                          provider_user_id=hashed_subject("kakao", "42")), user_id, USER)


async def types_of(store: EventStore, aggregate_id: str) -> list[str]:
    return [e.type for e in await store.read_aggregate(aggregate_id)]


async def test_sign_in_registers_once_then_records_logins(store: EventStore) -> None:
    user_id = user_id_for("kakao", "42")
    first, second = sign_in(user_id), sign_in(user_id)
    await run(store, first)
    await run(store, first)  # redelivered: nothing more
    await run(store, second)
    events = await store.read_aggregate(user_id)
    assert [e.type for e in events] == ["user.registered", "user.logged_in"]
    assert [e.metadata.causation_id for e in events] == [str(first.id), str(second.id)]
    registered = schemas.registry.decode_envelope(events[0])
    assert registered.model_dump() == {  # ids only: no personal field in the log
        "username": "", "nickname": "", "provider": "kakao",
        "provider_user_id": hashed_subject("kakao", "42")}


async def test_concurrent_first_sign_ins_register_once_and_each_finds_its_event(
    store: EventStore,
) -> None:
    user_id = user_id_for("kakao", "42")
    sent = [sign_in(user_id) for _ in range(4)]
    await asyncio.gather(*(run(store, s) for s in sent))
    events = await store.read_aggregate(user_id)
    assert sorted(e.type for e in events) == ["user.logged_in"] * 3 + ["user.registered"]
    assert {e.metadata.causation_id for e in events} == {str(s.id) for s in sent}


async def test_profile_and_deletion_are_recorded_once_and_never_for_strangers(
    store: EventStore,
) -> None:
    user_id = user_id_for("kakao", "42")
    await run(store, command(UpdateProfile(user_id=user_id), user_id, USER))
    await run(store, command(DeleteUser(user_id=user_id), user_id, USER))
    assert await types_of(store, user_id) == []  # not registered: nothing
    await run(store, sign_in(user_id))
    update = command(UpdateProfile(user_id=user_id), user_id, USER)
    await run(store, update)
    await run(store, update)
    delete = command(DeleteUser(user_id=user_id), user_id, USER)
    await run(store, delete)
    await run(store, command(DeleteUser(user_id=user_id), user_id, USER))
    await run(store, sign_in(user_id))  # a deleted account stays deleted
    assert await types_of(store, user_id) == [
        "user.registered", "user.profile_updated", "user.deleted"]
    assert (await load_user(store, user_id)).deleted


async def test_chat_sessions_are_created_once_and_changed_only_by_their_owner(
    store: EventStore,
) -> None:
    create = command(CreateChat(chat_id="c1", user_id="alice", title="분리수거"), "c1", CHAT)
    await run(store, create)
    await run(store, command(CreateChat(chat_id="c1", user_id="alice", title="again"), "c1", CHAT))
    await run(store, command(RenameChat(chat_id="c1", user_id="bob", title="mine"), "c1", CHAT))
    await run(store, command(DeleteChat(chat_id="c1", user_id="bob"), "c1", CHAT))
    rename = command(RenameChat(chat_id="c1", user_id="alice", title="새 이름"), "c1", CHAT)
    await run(store, rename)
    await run(store, rename)
    chat = await load_chat(store, "c1", schemas.registry)
    assert chat.title == "새 이름" and chat.visible_to("alice") and chat.version == 2
    for _ in range(2):
        await run(store, command(DeleteChat(chat_id="c1", user_id="alice"), "c1", CHAT))
    assert await types_of(store, "c1") == ["chat.created", "chat.renamed", "chat.deleted"]
    await run(store, command(RenameChat(chat_id="c1", user_id="alice", title="late"), "c1", CHAT))
    assert not (await load_chat(store, "c1", schemas.registry)).visible_to("alice")
    assert (await store.read_aggregate("c1"))[1].metadata.causation_id == str(rename.id)
