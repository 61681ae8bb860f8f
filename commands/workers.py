"""The handler workers: which consumer group runs which handler, bound to its dependencies.

``eco2 worker scan``     group ``scan``,     commands log, ``RequestScan``     → ``handle_request_scan``
``eco2 worker reward``   group ``reward``,   events log,   ``AnswerCompleted`` → ``handle_answer_completed``
``eco2 worker chat``     group ``chat``,     commands log, ``SendChatMessage``/``ProvideInput`` → the
                         chat turn handler (``commands.chat.worker``) with the graph built once
``eco2 worker snapshot`` group ``snapshot``, events log, in log order → the snapshot projector

Each runs on the FastStream runtime (``eventstore.runtime``); the process around it (settings,
resources, probes, drain) is wired by ``infra.worker_process``, which hands the dependencies
down as plain values (``WorkerDeps``). Nothing here reads settings or imports ``infra``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from agents.knowledge import KnowledgeBase
from agents.llm.ports import LLM, Vision
from characters import CharacterService
from commands.reward import handle_answer_completed
from commands.scan.chain import handle_request_scan
from eventstore.archive import Archive
from eventstore.consumer import Handler, Subscription
from eventstore.groups import Source
from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis
from eventstore.store import EventStore
from schemas.chat import ProvideInput, SendChatMessage
from schemas.envelope import Envelope
from schemas.registry import Message
from schemas.scan import AnswerCompleted, RequestScan

WorkerKind = Literal["scan", "reward", "chat", "snapshot"]
WORKER_KINDS: tuple[WorkerKind, ...] = get_args(WorkerKind)
# Handlers that wait (on a model, or on the character service and the job's answer): one entry
# per FastStream call, many at once, rather than batches that wait for their slowest entry
# before the next read (reward: hop p95 0.65-1.40 s as a batch reader, 0.37-0.69 s per message
# at 5,000 scanning users).
PER_MESSAGE: frozenset[WorkerKind] = frozenset({"scan", "chat", "reward"})


@dataclass(frozen=True)
class WorkerDeps:
    """What the handlers of a worker are bound to (built by the composition root)."""

    redis: AsyncRedis
    layout: Layout
    store: EventStore
    archive: Archive | None = None
    vision: Vision | None = None
    llm: LLM | None = None
    kb: KnowledgeBase | None = None
    media: Any = None  # the upload media store (``MediaStore`` port)
    media_key: Callable[[str], str | None] = lambda url: None
    characters: CharacterService | None = None
    reward_wait_s: float = 0.0
    chat_graph: Callable[[], Any] | None = None  # builds the chat graph (LangGraph: chat only)


def _need(value: Any, what: str) -> Any:
    if value is None:
        raise ValueError(f"the worker needs {what}")
    return value


def subscription(kind: WorkerKind, deps: WorkerDeps) -> Subscription:
    """The consumer group of worker ``kind`` with its handler bound to ``deps``."""
    if kind == "scan":

        async def on_request_scan(envelope: Envelope, message: Message) -> None:
            if not isinstance(message, RequestScan):
                raise TypeError(f"scan worker got {type(message).__name__}")
            await handle_request_scan(
                envelope, message, store=deps.store, vision=_need(deps.vision, "vision"),
                llm=_need(deps.llm, "an LLM"), kb=_need(deps.kb, "the knowledge base"),
                media=_need(deps.media, "the media store"), media_key=deps.media_key,
            )

        return Subscription("scan", "commands", {RequestScan: on_request_scan})

    if kind == "reward":

        async def on_answer_completed(envelope: Envelope, message: Message) -> None:
            if not isinstance(message, AnswerCompleted):
                raise TypeError(f"reward worker got {type(message).__name__}")
            await handle_answer_completed(
                envelope, message, store=deps.store,
                characters=_need(deps.characters, "the character service"),
                wait_s=deps.reward_wait_s,
            )

        return Subscription("reward", "events", {AnswerCompleted: on_answer_completed})

    if kind == "snapshot":
        from projections.snapshot import snapshot_subscription

        return snapshot_subscription(deps.redis, deps.layout, archive=deps.archive)

    if kind == "chat":
        from commands.chat.worker import chat_subscription  # loads LangGraph: chat only

        return chat_subscription(deps.store, _need(deps.chat_graph, "a chat graph")())

    raise ValueError(f"unknown worker {kind!r}; known: {', '.join(WORKER_KINDS)}")


def described(kind: WorkerKind, deps: WorkerDeps) -> Subscription:
    """Worker ``kind``'s group and message classes without its dependencies (handlers refuse
    to run): what the AsyncAPI document describes."""
    async def unbound(envelope: Envelope, message: Message) -> None:
        raise RuntimeError(f"the {kind} worker is described, not running")

    if kind == "snapshot":
        return subscription("snapshot", deps)
    shapes: dict[str, tuple[Source, tuple[type[Message], ...]]] = {
        "scan": ("commands", (RequestScan,)),
        "reward": ("events", (AnswerCompleted,)),
        "chat": ("commands", (SendChatMessage, ProvideInput)),
    }
    source, classes = shapes[kind]
    handlers: dict[type[Message], Handler] = dict.fromkeys(classes, unbound)
    return Subscription(kind, source, handlers)
