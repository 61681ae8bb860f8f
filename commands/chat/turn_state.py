"""One chat turn's effect ids, and its aggregate (``chat_turn``) loaded from the log (the fold
itself is ``schemas.chat_state.TurnState``).

Handlers keep no state between deliveries: they fold the turn's events and continue from there.
The answer text already emitted (``TokensEmitted`` in order) is *committed*: clients may have
shown it, so a later run only ever appends to it.
"""

from __future__ import annotations

from uuid import UUID

from eventstore.causation import effect_id
from eventstore.port import EventStorePort
from schemas.chat_state import TurnState
from schemas.registry import MessageRegistry


def turn_effect(job_id: str, *step: str) -> UUID:
    """The deterministic id of one effect of turn ``job_id`` (e.g. ``"tokens", "3"``)."""
    return effect_id(job_id, "chat", *step)


def user_message_id(job_id: str) -> str:
    return str(turn_effect(job_id, "user_message"))


def assistant_message_id(job_id: str) -> str:
    return str(turn_effect(job_id, "assistant_message"))


async def load_turn(store: EventStorePort, job_id: str, registry: MessageRegistry) -> TurnState:
    """The turn's current state, read from its own stream."""
    return TurnState.from_events(job_id, await store.read_aggregate(job_id), registry)
