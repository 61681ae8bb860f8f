"""Consumer groups against a real Redis: delivery once, log order, parking of unknown types."""
from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from eventstore.consumer import RunnerOptions, Subscription
from eventstore.dlq import DeadLetterFilter, DeadLetters
from eventstore.groups import ConsumerGroup
from eventstore.later import RetryBudget
from eventstore.runtime import Runner
from eventstore.store import EventStore
from schemas.envelope import Envelope
from schemas.registry import Event, Message, MessageRegistry
from tests.eventstore.consumers import FAST, append_items, runner, running, wait_for
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis


async def test_every_entry_handled_once_and_acked(store: EventStore) -> None:
    seen: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        seen.append(message.name)

    names = [f"n{i}" for i in range(300)]
    for i in range(0, 300, 30):
        await append_items(store, names[i : i + 30])
    async with running(runner(store, "g", handle)):
        await wait_for(lambda: len(seen) == 300)
        await asyncio.sleep(0.1)
    assert sorted(seen) == sorted(names)
    for shard in range(4):
        pending = await store.redis.xpending(store.layout.keys(shard).events, "g")
        assert pending["pending"] == 0


async def test_poison_entry_dead_lettered_and_shard_moves_on(store: EventStore) -> None:
    attempts: list[str] = []
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        if message.name == "poison":
            attempts.append(message.name)
            raise ValueError("cannot digest poison")
        handled.append(message.name)

    agg = await append_items(store, ["a", "poison", "b", "c"])
    async with running(runner(store, "g", handle)):
        await wait_for(lambda: len(handled) == 3 and len(attempts) == FAST.max_deliveries)
        letters = DeadLetters(store.redis, store.layout)
        for _ in range(500):
            found = await letters.find(DeadLetterFilter(group="g"))
            if found:
                break
            await asyncio.sleep(0.02)
    assert handled == ["a", "b", "c"]
    assert len(found) == 1
    letter = found[0]
    assert letter.attempts == FAST.max_deliveries
    assert "cannot digest poison" in letter.error
    assert letter.type == "test.item_added" and letter.shard == store.layout.shard_of(agg)
    assert letter.stream == store.layout.keys_for(agg).events


async def test_an_entry_two_consumers_settle_is_moved_once(store: EventStore) -> None:
    """A claim racing a slow attempt leaves two consumers settling one failed entry: the
    first moves it on, the second finds it acked and adds nothing (no forked retry chain,
    no second letter)."""
    agg = await append_items(store, ["contested"])
    shard = store.layout.shard_of(agg)
    first, second = (ConsumerGroup(store.redis, store.layout, group="g", source="events",
                                   consumer=name) for name in ("first", "second"))
    await first.ensure([shard])
    [delivery] = await first.read(shard, count=10, block_ms=100)
    [claimed] = await second.claim(shard, min_idle_ms=0)
    assert claimed.entry_id == delivery.entry_id

    await first.retry(delivery, "ValueError: slow attempt")
    await second.retry(claimed, "ValueError: the claim's attempt")
    assert await second.dead_letter(claimed, "ValueError: gave up", attempts=5) == ""

    [retried] = await store.redis.xrange(store.layout.keys(shard).retry("g"))
    assert retried[1]["_error"] == "ValueError: slow attempt"
    assert await DeadLetters(store.redis, store.layout).find() == []
    [again] = await first.read(shard, count=10, block_ms=100)
    await first.requeue(again, {})
    await second.requeue(again, {})
    assert len(await store.redis.xrange(store.layout.keys(shard).retry("g"))) == 2


async def test_in_order_subscription_keeps_log_order_through_failures(store: EventStore) -> None:
    """A failed attempt is retried in place, a poison entry dead-lettered, and nothing later
    on the shard overtakes either; malformed entries do not stop the shard."""
    handled: list[str] = []
    blipped: set[str] = set()

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        if message.name == "poison":
            raise ValueError("cannot digest poison")
        if message.name.endswith("3") and message.name not in blipped:
            blipped.add(message.name)
            raise ConnectionError("Redis went away for a moment")
        handled.append(message.name)

    names = [f"n{i}" for i in range(40)]
    names.insert(20, "poison")
    agg = await append_items(store, names)
    shard = store.layout.shard_of(agg)
    keys = store.layout.keys(shard)
    garbage = await store.head(shard) + 1
    await store.redis.xadd(keys.events, {"garbage": "yes"}, id=f"{garbage}-0")
    await store.redis.set(keys.head, garbage)
    await append_items(store, ["last"], aggregate=agg)
    subscription = Subscription("g", "events", {ItemAdded: handle}, in_order=True)
    in_order = Runner(store.redis, store.layout, test_registry, subscription, options=FAST)
    async with running(in_order):
        await wait_for(lambda: "last" in handled)
    assert handled == [n for n in names if n != "poison"] + ["last"]
    assert blipped == {"n3", "n13", "n23", "n33"}
    letters = await DeadLetters(store.redis, store.layout).find(DeadLetterFilter(group="g"))
    assert sorted(letter.error.split(":")[0] for letter in letters) == [
        "MalformedEntry", "ValueError"
    ]
    assert await store.redis.xlen(keys.retry("g")) == 0  # retried in place
    pending = await store.redis.xpending(keys.events, "g")
    assert pending["pending"] == 0


async def test_in_order_takes_over_a_dead_consumers_entries_first(store: EventStore) -> None:
    """A restarted in-order consumer finishes what its predecessor left pending before
    anything newer, without waiting ``claim_idle_ms`` (a minute here)."""
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        handled.append(message.name)

    names = [f"n{i}" for i in range(250)]
    agg = await append_items(store, names[:150])
    keys = store.layout.keys(store.layout.shard_of(agg))
    await store.redis.xgroup_create(keys.events, "g", id="0", mkstream=True)
    # the predecessor read 150 entries and died before acking them
    await store.redis.xreadgroup("g", "dead", {keys.events: ">"}, count=150)
    await append_items(store, names[150:], aggregate=agg)
    subscription = Subscription("g", "events", {ItemAdded: handle}, in_order=True)
    options = RunnerOptions(block_ms=50, claim_idle_ms=60_000, batch=40)
    async with running(Runner(store.redis, store.layout, test_registry, subscription,
                              options=options)):
        await wait_for(lambda: len(handled) >= 250)
        await asyncio.sleep(0.1)
    assert handled == names
    assert (await store.redis.xpending(keys.events, "g"))["pending"] == 0


async def test_unknown_type_is_parked_until_a_release_knows_it(store: EventStore) -> None:
    """A type written by a newer release (rolling deploy) is neither dead-lettered nor dropped:
    it waits, visibly, on the group's retry stream; a consumer that knows it handles it.
    Malformed entries are still poison (dead-lettered at once)."""
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        handled.append(type(message).__name__)

    keys = store.layout.keys(0)
    stranger = Envelope(aggregate_id="x", type="from.the_future", data={"n": 1}).to_fields()
    await store.redis.xadd(keys.events, stranger, id="1-0")
    await store.redis.set(keys.head, 1)
    await store.redis.xadd(keys.events, {"garbage": "yes"}, id="2-0")
    await store.redis.set(keys.head, 2)
    later = Envelope(aggregate_id="x", type="test.item_added", data={"name": "after"})
    await store.redis.xadd(keys.events, later.to_fields(), id="3-0")
    await store.redis.set(keys.head, 3)
    options = replace(FAST, retry_budget=RetryBudget(initial_s=0.05, max_s=0.1), park_max_s=0.1)
    async with running(runner(store, "g", handle, options=options)):
        await wait_for(lambda: handled == ["ItemAdded"])
        parked: list[dict[str, str]] = []
        async with asyncio.timeout(10):  # looked at again and parked again, never dropped
            while len(parked) < 3:
                parked = [f for _, f in await store.redis.xrange(keys.retry("g")) if "_parked" in f]
                await asyncio.sleep(0.02)
    assert "from.the_future" in parked[-1]["_parked"] and parked[-1]["_attempts"] == "0"
    letters = await DeadLetters(store.redis, store.layout).find()
    assert [letter.error.split(":")[0] for letter in letters] == ["MalformedEntry"]

    # The next release knows the type: the parked entry is handled, once.
    newer = MessageRegistry()
    newer.register("test.item_added")(ItemAdded)

    @newer.register("from.the_future")
    class FromTheFuture(Event):
        n: int

    upgraded = Runner(
        store.redis,
        store.layout,
        newer,
        Subscription("g", "events", {FromTheFuture: handle}),  # type: ignore[dict-item]
        options=options,
    )
    async with running(upgraded):
        await wait_for(lambda: handled == ["ItemAdded", "FromTheFuture"])
        await asyncio.sleep(0.3)
    assert handled == ["ItemAdded", "FromTheFuture"]
    assert await DeadLetters(store.redis, store.layout).find() == letters


async def test_entries_of_unhandled_classes_are_acked_without_decoding(
    store: EventStore,
) -> None:
    """A group skips what it does not handle without parsing it: a broken ``test.noop`` entry
    is not this group's poison (the group that handles ``test.noop`` would dead-letter it)."""
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        handled.append(message.name)

    keys = store.layout.keys(0)
    broken = Envelope(aggregate_id="x", type="test.noop").to_fields() | {"data": "{not json"}
    later = Envelope(aggregate_id="x", type="test.item_added", data={"name": "after"})
    for position, fields in enumerate((broken, later.to_fields()), start=1):
        await store.redis.xadd(keys.events, fields, id=f"{position}-0")
        await store.redis.set(keys.head, position)
    async with running(runner(store, "g", handle)):
        await wait_for(lambda: handled == ["after"])
        await asyncio.sleep(0.1)
    assert await DeadLetters(store.redis, store.layout).find() == []
    assert (await store.redis.xpending(keys.events, "g"))["pending"] == 0
