"""One chat turn's aggregate (``chat_turn``) folded from its events, and its effect ids.

Handlers keep no state between deliveries: they fold the turn's events and continue from there.
The answer text already emitted (``TokensEmitted`` in order) is *committed*: clients may have
shown it, so a later run only ever appends to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from uuid import UUID

from commands.scan.job import effect_id
from eventstore.port import EventStorePort
from schemas.chat import (
    InputReceived,
    TokensEmitted,
    TurnCompleted,
    TurnFailed,
    TurnQueued,
    TurnWaiting,
    UserLocation,
)
from schemas.envelope import Envelope
from schemas.registry import Event, MessageRegistry


def turn_effect(job_id: str, *step: str) -> UUID:
    """The deterministic id of one effect of turn ``job_id`` (e.g. ``"tokens", "3"``)."""
    return effect_id(job_id, "chat", *step)


def user_message_id(job_id: str) -> str:
    return str(turn_effect(job_id, "user_message"))


def assistant_message_id(job_id: str) -> str:
    return str(turn_effect(job_id, "assistant_message"))


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


async def load_turn(store: EventStorePort, job_id: str, registry: MessageRegistry) -> TurnState:
    """The turn's current state, read from its own stream."""
    return TurnState.from_events(job_id, await store.read_aggregate(job_id), registry)
