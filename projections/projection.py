"""A projection: a name, a code version, the tables it writes and one handler per event class.

Handlers are plain functions ``handle(changes, message, envelope) -> None`` that record row
changes (``projections.changes``); the runtime writes a whole batch of them, together with the
new checkpoint, in one transaction. Dispatch is on the message class, never on a wire name.

Rules for handlers, so that a rebuild reproduces the live tables exactly: use only the event
and its envelope (timestamps are ``envelope.timestamp``, never the clock), and produce the same
final rows whatever the interleaving of *different* shards (events of one aggregate are always
in order; counters are sums; cross-aggregate writes touch separate columns).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from projections.changes import Changes
from readmodels.tables import TableGroup
from schemas.envelope import EnvelopeView
from schemas.registry import Message, MessageRegistry

M = TypeVar("M", bound=Message)
Handler = Callable[[Changes, M, EnvelopeView], None]


@dataclass
class Projection:
    """One read model's projection. ``version`` is the code version: bump it when handlers or
    tables change in a way that needs a rebuild (the runtime refuses to mix versions)."""

    name: str
    version: int
    group: TableGroup
    # Tables whose rows events of several shards write (e.g. points added by scan jobs on any
    # shard to a user's row): written in key order so concurrent batches cannot deadlock.
    shared: frozenset[str] = frozenset()
    handlers: dict[type[Message], Handler[Any]] = field(default_factory=dict)

    def changes(self) -> Changes:
        """An empty change set for this projection's tables."""
        return Changes(self.group, shared=self.shared)

    def on(self, cls: type[M]) -> Callable[[Handler[M]], Handler[M]]:
        """Decorator: register the handler of event class ``cls``."""

        def register(handler: Handler[M]) -> Handler[M]:
            if cls in self.handlers:
                raise ValueError(f"{self.name} already handles {cls.__name__}")
            self.handlers[cls] = handler
            return handler

        return register

    def wire_names(self, registry: MessageRegistry) -> frozenset[str]:
        """Wire names of the handled classes: entries with other names are not even decoded."""
        return frozenset(registry.wire_name(cls)[0] for cls in self.handlers)

    def apply(self, changes: Changes, message: Message, envelope: EnvelopeView) -> bool:
        """Record the changes of one event; False if this projection ignores its class."""
        handler = self.handlers.get(type(message))
        if handler is None:
            return False
        handler(changes, message, envelope)
        return True


def event_time(envelope: EnvelopeView) -> datetime:
    """When the event was recorded, as an aware UTC datetime."""
    return datetime.fromtimestamp(envelope.timestamp, UTC)
