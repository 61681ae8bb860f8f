"""Every handler run and every dead letter is counted, per group, message type and outcome."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from eventstore.keys import Layout
from eventstore.store import EventStore
from schemas.envelope import Envelope
from schemas.registry import Message
from tests.eventstore.consumers import FAST, append_items, runner, running, wait_for
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_handler_runs_and_dead_letters_are_measured(
    redis_client: aioredis.Redis, layout: Layout
) -> None:
    store = EventStore(redis_client, layout, test_registry)
    group = f"metered-{layout.namespace}"
    assert sample("eco2_handler_duration_seconds_count", group=group,
                  type="test.item_added", outcome="ok") == 0.0
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        if message.name == "bad":
            raise ValueError("indigestible")
        handled.append(message.name)

    await append_items(store, ["a", "b", "bad"])
    async with running(runner(store, group, handle, options=FAST)):
        await wait_for(lambda: len(handled) == 2 and sample(
            "eco2_dead_letters_total", group=group, reason="ValueError") == 1)
    assert sample("eco2_handler_duration_seconds_count", group=group,
                  type="test.item_added", outcome="ok") == 2
    assert sample("eco2_handler_duration_seconds_count", group=group,
                  type="test.item_added", outcome="error") == FAST.max_deliveries


def batches(group: str) -> tuple[float, float]:
    """(reads, entries) of ``group``'s readers so far."""
    return (sample("eco2_consumer_batch_entries_count", group=group),
            sample("eco2_consumer_batch_entries_sum", group=group))


def recorder() -> tuple[list[str], Callable[[Envelope, Message], Awaitable[None]]]:
    """A handler that records the names of the items it handles, and their list."""
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        handled.append(message.name)

    return handled, handle


@pytest.mark.parametrize("per_message", [False, True], ids=["batch", "per-message"])
async def test_a_lingering_reader_takes_a_trickle_in_fuller_batches(
    redis_client: aioredis.Redis, layout: Layout, per_message: bool
) -> None:
    """Entries appended one by one while a reader lingers after a short read are read
    together: fewer reads than entries, each entry handled once, and every read measured;
    a per-message reader (each entry a run of its own) lingers as a batch reader does."""
    store = EventStore(redis_client, layout, test_registry)
    group = f"lingering-{layout.namespace}"
    handled, handle = recorder()
    aggregate = "one-shard"  # every entry on one shard: one reader sees them all
    names = [f"n{i}" for i in range(10)]
    # workers: per-message reads of up to 16 entries, more than the trickle
    options = replace(FAST, linger_ms=3_000, per_message=per_message, workers=16 * layout.shards)
    async with running(runner(store, group, handle, options=options)):
        await append_items(store, ["first"], aggregate=aggregate)
        await wait_for(lambda: handled == ["first"])
        await append_items(store, names, aggregate=aggregate)  # while the reader lingers
        await wait_for(lambda: len(handled) == 11)
    assert handled == ["first", *names]
    reads, entries = batches(group)
    assert entries == 11
    assert reads <= 3  # "first", then the trickle in one read (two if it straddled the read)


async def test_a_per_message_reader_reads_again_at_once_after_a_full_read(
    redis_client: aioredis.Redis, layout: Layout
) -> None:
    """A per-message read that took its whole share of the slots is not short: the next read
    follows at once. A backlog of 10 is read two at a time without the linger (a minute here,
    after each read, if it applied)."""
    store = EventStore(redis_client, layout, test_registry)
    group = f"full-reads-{layout.namespace}"
    handled, handle = recorder()
    names = [f"n{i}" for i in range(10)]
    await append_items(store, names, aggregate="one-shard")  # all there before the first read
    # workers: reads of 2 entries (workers // shards), each full
    options = replace(FAST, linger_ms=60_000, per_message=True, workers=2 * layout.shards)
    async with running(runner(store, group, handle, options=options)):
        await wait_for(lambda: len(handled) == 10)
    assert sorted(handled) == sorted(names)
    assert batches(group) == (5, 10)
