"""The chat session's aggregate loaded from the log (the fold itself is
``schemas.chat_state.ChatSession``)."""

from __future__ import annotations

from eventstore.port import EventStorePort
from schemas.chat_state import ChatSession
from schemas.registry import MessageRegistry


async def load_chat(store: EventStorePort, chat_id: str, registry: MessageRegistry) -> ChatSession:
    """The chat's current state, read from its own stream (empty when unknown)."""
    return ChatSession.from_events(chat_id, await store.read_aggregate(chat_id), registry)
