"""Chat: the commands and the events of two aggregates.

``chat`` (id = chat id): the session — created, renamed, deleted — and every message recorded
in it (user and assistant), which is where history comes from.

``chat_turn`` (id = job id): one answer to one user message — queued, node progress, the
answer text as coalesced deltas (``TokensEmitted``), waiting for input, input received, and a
terminal ``TurnCompleted`` (the successful ``done``) or ``TurnFailed`` (a failed ``done``).

Messages are at most ``MAX_MESSAGE_CHARS`` (4,000) characters: long enough for any question a
person types, short enough that a pasted document is refused (422) rather than sent to a model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.registry import Command, Event, Message, message

CHAT = "chat"
CHAT_TURN = "chat_turn"

MAX_MESSAGE_CHARS = 4000
MAX_TITLE_CHARS = 100
HISTORY_MESSAGES = 10  # history handed to the graph: the last 10 messages of the chat
AUTO_TITLE_CHARS = 40  # an untitled chat is named after the start of its first question
PREVIEW_CHARS = 100

Role = Literal["user", "assistant"]
NodeStatus = Literal["started", "completed", "failed", "skipped"]
InputType = Literal["location", "confirmation", "cancel"]

# Progress (percent) shown when a node completes; nodes not listed keep the current value.
NODE_PROGRESS: dict[str, int] = {
    "queued": 0,
    "intent": 15,
    "vision": 20,
    "aggregator": 70,
    "answer": 95,
    "done": 100,
}
SUBAGENT_PROGRESS = 50  # every subagent (waste_rag, location, …)


def clip(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters (titles, previews)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def auto_title(first_question: str) -> str:
    """The title of a chat created without one (the read model and the fold agree on it)."""
    return clip(first_question, AUTO_TITLE_CHARS)


class UserLocation(BaseModel):
    """Where the user is (WGS84 degrees)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


# -- commands -----------------------------------------------------------------------------


@message("chat.send_message")
class SendChatMessage(Command):
    """A user message to answer (command; aggregate = the turn's job id)."""

    job_id: str
    chat_id: str
    user_id: str
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    image_url: str | None = None
    user_location: UserLocation | None = None
    model: str | None = None

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


@message("chat.provide_input")
class ProvideInput(Command):
    """The answer to a ``needs_input`` (command; aggregate = the turn's job id).

    ``waiting_version`` is the version of the ``TurnWaiting`` it answers, so an input meant for
    an earlier question can never resume a later one.
    """

    job_id: str
    user_id: str
    type: InputType
    data: dict[str, Any] = Field(default_factory=dict)
    location: UserLocation | None = None  # parsed from ``data`` for type ``location``
    waiting_version: int = Field(ge=1)


# -- the chat session (aggregate ``chat``) --------------------------------------------------
# The gateway appends these commands and answers once their event is recorded (the API returns
# the session's state, so the request waits for it).


@message("chat.create")
class CreateChat(Command):
    """Create the chat ``chat_id`` for ``user_id`` (a retry with the same id creates nothing)."""

    chat_id: str
    user_id: str
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)


@message("chat.rename")
class RenameChat(Command):
    chat_id: str
    user_id: str
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)


@message("chat.delete")
class DeleteChat(Command):
    chat_id: str
    user_id: str


@message("chat.created")
class ChatCreated(Event):
    user_id: str
    title: str | None = Field(default=None, max_length=MAX_TITLE_CHARS)


@message("chat.renamed")
class ChatRenamed(Event):
    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)


@message("chat.deleted")
class ChatDeleted(Event):
    """After this event the chat is gone for its user (404) and its messages leave the read
    model."""


@message("chat.message_recorded")
class MessageRecorded(Event):
    """One message of the conversation, recorded once per turn and role (deterministic id)."""

    message_id: str
    role: Role
    content: str
    image_url: str | None = None
    intent: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    turn_id: str | None = None


# -- one turn (aggregate ``chat_turn``) -----------------------------------------------------


@message("chat.turn_queued")
class TurnQueued(Event):
    chat_id: str
    user_id: str
    message: str
    image_url: str | None = None
    user_location: UserLocation | None = None
    model: str | None = None
    user_message_id: str  # the user's MessageRecorded on the chat


@message("chat.node_progressed")
class NodeProgressed(Event):
    node: str
    status: NodeStatus
    message: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


@message("chat.tokens_emitted")
class TokensEmitted(Event):
    """A coalesced delta of the answer text; the turn's deltas in ``seq`` order concatenate to
    the answer of its ``TurnCompleted``."""

    content: str = Field(min_length=1)
    seq: int = Field(ge=1)
    node: str = "answer"


@message("chat.turn_waiting")
class TurnWaiting(Event):
    """The turn stopped until the user answers (``POST /chat/{job}/input``); no worker waits."""

    input_type: str
    message: str


@message("chat.input_received")
class InputReceived(Event):
    type: InputType
    data: dict[str, Any] = Field(default_factory=dict)
    location: UserLocation | None = None


class Persistence(BaseModel):
    """Where the turn's messages were recorded (the chat and both message ids)."""

    model_config = ConfigDict(frozen=True)

    conversation_id: str
    user_message: str
    assistant_message: str
    assistant_message_created_at: str  # ISO 8601, UTC


class TurnOutcome(BaseModel):
    """``done.result`` of a completed turn."""

    model_config = ConfigDict(frozen=True)

    intent: str
    intents: list[str] = Field(default_factory=list)
    answer: str
    subagents: list[str] = Field(default_factory=list)
    skipped: list[Any] = Field(default_factory=list)
    sources: list[Any] = Field(default_factory=list)
    persistence: Persistence


@message("chat.turn_completed")
class TurnCompleted(Event):
    """The successful ``done``."""

    user_id: str
    chat_id: str
    result: TurnOutcome


@message("chat.turn_failed")
class TurnFailed(Event):
    """The failed ``done``: a readable message, never silence."""

    user_id: str
    chat_id: str
    message: str
    code: str = "chat_failed"


# -- SSE only (never stored) -----------------------------------------------------------------


class TokenRecovery(Message):
    """What a fresh connection gets instead of the text's individual deltas: the text so far
    (it *replaces* the client's text). Built by the gateway from the turn's history."""

    accumulated: str
    last_seq: int
    completed: bool
    node: str = "answer"
