"""Settled entries are acked in batches: one round trip per delay, and at once on stop."""

from __future__ import annotations

import asyncio

import pytest

from eventstore.acks import AckBatches
from eventstore.groups import ConsumerGroup
from eventstore.store import EventStore

pytestmark = pytest.mark.redis


async def pending(store: EventStore, stream: str) -> int:
    return int((await store.redis.xpending(stream, "g"))["pending"])


async def delivered(store: EventStore, count: int) -> tuple[ConsumerGroup, str, list[str]]:
    group = ConsumerGroup(store.redis, store.layout, group="g", source="events", consumer="c")
    await group.ensure([0])
    stream = store.layout.keys(0).events
    for n in range(1, count + 1):
        await store.redis.xadd(stream, {"n": str(n)}, id=f"{n}-0")
    entries = await group.read(0, count=count, block_ms=10)
    return group, stream, [d.entry_id for d in entries]


async def test_entries_settled_apart_are_acked_together_after_the_delay(store: EventStore) -> None:
    group, stream, ids = await delivered(store, 3)
    acks = AckBatches(group, delay_s=0.05)
    acks.add(stream, ids[:2])
    acks.add(stream, ids[2:])
    assert await pending(store, stream) == 3  # not one XACK per settled entry
    async with asyncio.timeout(10):
        while await pending(store, stream):
            await asyncio.sleep(0.01)


async def test_closing_acks_what_waits_at_once(store: EventStore) -> None:
    """A stop does not wait out the delay (an hour here), and nothing settled is left pending
    for the stop's hand-back to take for a left-over entry."""
    group, stream, ids = await delivered(store, 2)
    acks = AckBatches(group, delay_s=3600)
    acks.add(stream, ids)
    await acks.close()
    assert await pending(store, stream) == 0
