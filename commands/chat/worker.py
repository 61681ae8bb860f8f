"""The chat worker's consumer group: ``SendChatMessage`` and ``ProvideInput`` → the turn handler.

``eco2 worker chat`` runs it (``commands.workers``) with the graph built once at start-up; tests
and the benchmark run it with the scripted twin.
"""

from __future__ import annotations

import schemas
from commands.chat.text import Coalescing, StreamingTurns
from commands.chat.turn import (
    DEFAULT_COALESCING,
    ChatGraph,
    handle_provide_input,
    handle_send_message,
)
from eventstore.consumer import Subscription
from eventstore.port import EventStorePort
from schemas.chat import ProvideInput, SendChatMessage
from schemas.envelope import Envelope
from schemas.registry import Message, MessageRegistry

CHAT_GROUP = "chat"


def chat_subscription(
    store: EventStorePort,
    graph: ChatGraph,
    *,
    registry: MessageRegistry = schemas.registry,
    coalescing: Coalescing = DEFAULT_COALESCING,
) -> Subscription:
    """The ``chat`` group on every shard's command stream, bound to ``graph``."""
    turns = StreamingTurns()  # shared by this process's turns: paces their deltas

    async def on_send(envelope: Envelope, message: Message) -> None:
        if not isinstance(message, SendChatMessage):
            raise TypeError(f"chat worker got {type(message).__name__}")
        await handle_send_message(envelope, message, store=store, graph=graph,
                                  registry=registry, coalescing=coalescing, turns=turns)

    async def on_input(envelope: Envelope, message: Message) -> None:
        if not isinstance(message, ProvideInput):
            raise TypeError(f"chat worker got {type(message).__name__}")
        await handle_provide_input(envelope, message, store=store, graph=graph,
                                   registry=registry, coalescing=coalescing, turns=turns)

    return Subscription(CHAT_GROUP, "commands", {SendChatMessage: on_send, ProvideInput: on_input})
