"""Message classes used only by the event store's tests."""

from __future__ import annotations

from schemas.registry import Event, MessageRegistry

test_registry = MessageRegistry()


@test_registry.register("test.item_added")
class ItemAdded(Event):
    name: str
    quantity: int = 1


@test_registry.register("test.noop")
class Noop(Event):
    pass
