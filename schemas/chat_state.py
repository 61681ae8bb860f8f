"""The chat's two aggregates folded from their events: the session (``chat``: owner, title,
messages) and one turn (``chat_turn``: the committed answer, waits, inputs, the end).

Pure folds of messages, no I/O: the turn handler reads history and the previous intent from a
session and continues a turn from its state; the gateway folds a session to check ownership and,
when the read model lags, to serve history (read-your-writes), and a turn to accept an input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.chat import (
    HISTORY_MESSAGES,
    ChatCreated,
    ChatDeleted,
    ChatRenamed,
    InputReceived,
    MessageRecorded,
    TokensEmitted,
    TurnCompleted,
    TurnFailed,
    TurnQueued,
    TurnWaiting,
    UserLocation,
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



@dataclass
class TurnState:
    job_id: str
    version: int = 0
    queued: TurnQueued | None = None
    event_ids: set[str] = field(default_factory=set)
    deltas: list[TokensEmitted] = field(default_factory=list)
    waiting: TurnWaiting | None = None
    waiting_version: int = 0
    input: InputReceived | None = None  # the latest answer to a TurnWaiting
    input_version: int = 0
    completed: TurnCompleted | None = None
    failed: TurnFailed | None = None

    @property
    def finished(self) -> bool:
        """A ``done`` (completed or failed) is recorded: nothing more may be appended."""
        return self.completed is not None or self.failed is not None

    @property
    def is_waiting(self) -> bool:
        """Stopped at a ``needs_input`` that no input has answered yet."""
        return (
            not self.finished
            and self.waiting is not None
            and self.input_version < self.waiting_version
        )

    @property
    def text(self) -> str:
        """The committed answer text: every delta so far, in order."""
        return "".join(d.content for d in self.deltas)

    @property
    def last_seq(self) -> int:
        return self.deltas[-1].seq if self.deltas else 0

    @property
    def location(self) -> UserLocation | None:
        """The user's location: from the latest input, else from the message."""
        if self.input is not None and self.input.location is not None:
            return self.input.location
        return self.queued.user_location if self.queued else None

    @property
    def cancelled(self) -> bool:
        return self.input is not None and self.input.type == "cancel"

    def apply(self, event: Event, envelope: Envelope, *, version: int | None = None) -> None:
        """Fold ``event``; ``version`` when the envelope predates its append (a writer's)."""
        version = envelope.version if version is None else version
        self.version = version
        self.event_ids.add(str(envelope.id))
        match event:
            case TurnQueued():
                self.queued = event
            case TokensEmitted():
                self.deltas.append(event)
            case TurnWaiting():
                self.waiting, self.waiting_version = event, version
            case InputReceived():
                self.input, self.input_version = event, version
            case TurnCompleted():
                self.completed = event
            case TurnFailed():
                self.failed = event

    @classmethod
    def from_events(
        cls, job_id: str, envelopes: Iterable[Envelope], registry: MessageRegistry
    ) -> TurnState:
        turn = cls(job_id)
        for envelope in envelopes:
            event = registry.decode_envelope(envelope)
            if isinstance(event, Event):
                turn.apply(event, envelope)
        return turn

