"""The chat session's commands: create, rename, delete (the aggregate ``chat``).

The gateway checks ownership before it appends (a foreign or unknown chat is its 404) and waits
for the event these handlers append; each event's ``causation_id`` is its command's id. Ids are
derived from the chat (create, delete: once per chat) or from the command (rename), so a
redelivered command appends nothing twice.
"""

from __future__ import annotations

import schemas
from commands.chat.session import load_chat
from eventstore.causation import caused_by, effect_id
from eventstore.port import EventStorePort
from eventstore.store import ANY
from schemas.chat import (
    CHAT,
    ChatCreated,
    ChatDeleted,
    ChatRenamed,
    CreateChat,
    DeleteChat,
    RenameChat,
)
from schemas.envelope import Envelope
from schemas.registry import Event


async def _append(store: EventStorePort, cause: Envelope, chat_id: str, user_id: str, event: Event,
                  *step: str) -> None:
    envelope = schemas.registry.envelope(
        event, aggregate_id=chat_id, aggregate_type=CHAT, metadata=caused_by(cause, user_id),
        id=effect_id(*step),
    )
    await store.append([envelope], expected_version=ANY)


async def handle_create_chat(cause: Envelope, command: CreateChat, *, store: EventStorePort) -> None:
    """Record ``ChatCreated`` (a repeated create of the same chat id records nothing more)."""
    created = ChatCreated(user_id=command.user_id, title=command.title)
    await _append(store, cause, command.chat_id, command.user_id, created,
                  command.chat_id, "chat", "created")


async def handle_rename_chat(cause: Envelope, command: RenameChat, *, store: EventStorePort) -> None:
    """Record ``ChatRenamed`` when the chat is still the user's."""
    chat = await load_chat(store, command.chat_id, schemas.registry)
    if chat.visible_to(command.user_id):
        await _append(store, cause, command.chat_id, command.user_id,
                      ChatRenamed(title=command.title), str(cause.id), "chat", "renamed")


async def handle_delete_chat(cause: Envelope, command: DeleteChat, *, store: EventStorePort) -> None:
    """Record ``ChatDeleted`` once, when the chat is the user's."""
    chat = await load_chat(store, command.chat_id, schemas.registry)
    if chat.user_id == command.user_id:
        await _append(store, cause, command.chat_id, command.user_id, ChatDeleted(),
                      command.chat_id, "chat", "deleted")
