"""The chat: a LangGraph multi-agent graph answering one message per stateless run.

``build_chat_graph(deps) -> ChatGraph`` once per process; ``ChatGraph.run(TurnInput)`` streams
``NodeUpdate`` / ``Token`` and ends with ``TurnResult`` or ``NeedsInput`` (or raises
``TurnAborted``); ``ChatGraph.run_into(TurnInput, put)`` hands the same items to ``put`` as the
nodes emit them (the chat worker's way). ``offline_chat_deps()`` wires every port to its offline adapter.
"""

from __future__ import annotations

from agents.chat.deps import ChatDeps, offline_chat_deps
from agents.chat.graph import ChatGraph, build_chat_graph
from agents.chat.intents import IntentClassifier
from agents.chat.turn import (
    STAGES,
    ChatUpdate,
    GeoPoint,
    HistoryItem,
    NeedsInput,
    NodeUpdate,
    Token,
    TurnAborted,
    TurnInput,
    TurnResult,
)

__all__ = [
    "STAGES",
    "ChatDeps",
    "ChatGraph",
    "ChatUpdate",
    "GeoPoint",
    "HistoryItem",
    "IntentClassifier",
    "NeedsInput",
    "NodeUpdate",
    "Token",
    "TurnAborted",
    "TurnInput",
    "TurnResult",
    "build_chat_graph",
    "offline_chat_deps",
]
