"""The chat session's aggregate (``chat``) folded from its events: owner, title, messages.

The turn handler reads history (the last 10 messages) and the previous intent from it; the
gateway folds it to check ownership and, when the read model lags, to serve history
(read-your-writes after a turn's ``done``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eventstore.port import EventStorePort
from schemas.chat import (
    HISTORY_MESSAGES,
    ChatCreated,
    ChatDeleted,
    ChatRenamed,
    MessageRecorded,
    auto_title,
)
from schemas.envelope import Envelope
from schemas.registry import Event, MessageRegistry


@dataclass(frozen=True)
class ChatMessage:
    """A recorded message with the time its event was recorded (Unix seconds)."""

    message_id: str
    role: str
    content: str
    image_url: str | None
    intent: str | None
    metadata: dict[str, Any]
    turn_id: str | None
    created_at: float


@dataclass
class ChatSession:
    chat_id: str
    version: int = 0
    user_id: str | None = None
    title: str | None = None
    created_at: float | None = None
    deleted: bool = False
    messages: list[ChatMessage] = field(default_factory=list)
    _ids: set[str] = field(default_factory=set)

    @property
    def exists(self) -> bool:
        """Created and not deleted."""
        return self.user_id is not None and not self.deleted

    def visible_to(self, user_id: str) -> bool:
        """The chat exists and belongs to ``user_id`` (anything else is a 404)."""
        return self.exists and self.user_id == user_id

    @property
    def last_message_at(self) -> float | None:
        return self.messages[-1].created_at if self.messages else None

    def message(self, message_id: str) -> ChatMessage | None:
        if message_id not in self._ids:
            return None
        return next(m for m in self.messages if m.message_id == message_id)

    def apply(self, event: Event, envelope: Envelope) -> None:
        self.version = envelope.version
        match event:
            case ChatCreated():
                self.user_id = event.user_id
                self.title = event.title
                self.created_at = envelope.timestamp
            case ChatRenamed():
                self.title = event.title
            case ChatDeleted():
                self.deleted = True
            case MessageRecorded():
                if event.message_id in self._ids:
                    return
                if self.title is None and event.role == "user":
                    self.title = auto_title(event.content)
                self._ids.add(event.message_id)
                self.messages.append(
                    ChatMessage(
                        event.message_id, event.role, event.content, event.image_url,
                        event.intent, dict(event.metadata), event.turn_id, envelope.timestamp,
                    )
                )

    def before_turn(self, turn_id: str) -> list[ChatMessage]:
        """Messages recorded before the first message of ``turn_id`` (all when it has none), so
        a turn sees the same history however often it is run."""
        for i, m in enumerate(self.messages):
            if m.turn_id == turn_id:
                return self.messages[:i]
        return list(self.messages)

    def history_for(self, turn_id: str, limit: int = HISTORY_MESSAGES) -> list[ChatMessage]:
        """The last ``limit`` messages before ``turn_id``, oldest first."""
        return self.before_turn(turn_id)[-limit:] if limit > 0 else []

    def previous_intent(self, turn_id: str) -> str | None:
        """The intent of the last assistant answer before ``turn_id``."""
        for m in reversed(self.before_turn(turn_id)):
            if m.role == "assistant" and m.intent:
                return m.intent
        return None

    @classmethod
    def from_events(
        cls, chat_id: str, envelopes: Iterable[Envelope], registry: MessageRegistry
    ) -> ChatSession:
        chat = cls(chat_id)
        for envelope in envelopes:
            event = registry.decode_envelope(envelope)
            if isinstance(event, Event):
                chat.apply(event, envelope)
        return chat


async def load_chat(store: EventStorePort, chat_id: str, registry: MessageRegistry) -> ChatSession:
    """The chat's current state, read from its own stream (empty when unknown)."""
    return ChatSession.from_events(chat_id, await store.read_aggregate(chat_id), registry)
