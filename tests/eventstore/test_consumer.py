"""Consumer groups against a real Redis: delivery, crash recovery, dead letters, replay."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
import redis.asyncio as aioredis

from eventstore.consumer import RetryLater, RunnerOptions, Subscription
from eventstore.dlq import DeadLetterFilter, DeadLetters
from eventstore.groups import ConsumerGroup
from eventstore.keys import Layout
from eventstore.later import RetryBudget
from eventstore.runtime import Runner
from eventstore.store import EventStore
from schemas.envelope import Envelope
from schemas.registry import Event, Message, MessageRegistry
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis

# Claims are for dead consumers: one that is merely slow (a loaded machine can hold an entry
# between read and handler for longer than a short claim_idle_ms) must not have its entries
# taken and handled twice, which at-least-once delivery allows and these tests count exactly.
# The tests of claiming set their own short idle time.
FAST = RunnerOptions(block_ms=50, claim_idle_ms=10_000, claim_interval_s=0.05,
                     retry_backoff_s=0.01)


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    return EventStore(redis_client, layout, test_registry)


async def append_items(store: EventStore, names: list[str], aggregate: str | None = None) -> str:
    agg = aggregate or str(uuid.uuid4())
    for name in names:
        env = test_registry.envelope(ItemAdded(name=name), aggregate_id=agg)
        await store.append([env], expected_version="any")
    return agg


@contextlib.asynccontextmanager
async def running(runner: Runner) -> AsyncIterator[Runner]:
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def runner(store: EventStore, group: str, handler: object, **kw: object) -> Runner:
    return Runner(
        store.redis,
        store.layout,
        test_registry,
        Subscription(group, "events", {ItemAdded: handler}),  # type: ignore[dict-item]
        options=kw.pop("options", FAST),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


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


async def test_dlq_replay_reaches_only_the_failed_group(store: EventStore) -> None:
    broken = True
    fixed_seen: list[str] = []
    other_seen: list[str] = []

    async def flaky(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        if broken:
            raise RuntimeError("bug")
        fixed_seen.append(message.name)

    async def other(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        other_seen.append(message.name)

    await append_items(store, ["one"])
    letters = DeadLetters(store.redis, store.layout)
    async with running(runner(store, "flaky", flaky)), running(runner(store, "other", other)):
        await wait_for(lambda: other_seen == ["one"])
        for _ in range(200):
            if await letters.find(DeadLetterFilter(group="flaky")):
                break
            await asyncio.sleep(0.02)
        assert await letters.replay(DeadLetterFilter(group="flaky"), dry_run=True)
        assert len(await letters.find()) == 1  # dry run changed nothing
        broken = False
        replayed = await letters.replay(DeadLetterFilter(group="flaky"))
        assert [r.type for r in replayed] == ["test.item_added"]
        await wait_for(lambda: fixed_seen == ["one"])
        await asyncio.sleep(0.2)
    assert other_seen == ["one"]  # the healthy group did not see it again
    assert await letters.find() == []


async def test_purge_with_dry_run(store: EventStore) -> None:
    async def always_fails(envelope: Envelope, message: Message) -> None:
        raise RuntimeError("nope")

    await append_items(store, ["x", "y"])
    letters = DeadLetters(store.redis, store.layout)
    async with running(runner(store, "g", always_fails)):
        for _ in range(300):
            if len(await letters.find()) == 2:
                break
            await asyncio.sleep(0.02)
    assert len(await letters.purge(DeadLetterFilter(error="nope"), dry_run=True)) == 2
    assert len(await letters.find()) == 2
    assert len(await letters.purge(DeadLetterFilter(error="nope"))) == 2
    assert await letters.find() == []


async def test_killed_consumer_entry_is_claimed_by_another(
    store: EventStore, namespace: str, redis_url: str
) -> None:
    agg = "slow-one"
    while store.layout.shard_of(agg) != 0:
        agg += "x"
    await append_items(store, ["slow"], aggregate=agg)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.eventstore.consumer_proc", redis_url, namespace, "g", "victim"],
        cwd=os.getcwd(),
    )
    started_key = f"{{{namespace}:s0}}:started"
    try:
        for _ in range(300):
            if await store.redis.lrange(started_key, 0, -1) == ["slow"]:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the victim never started the message")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert await store.redis.lrange(f"{{{namespace}:s0}}:handled:victim", 0, -1) == []

    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        handled.append(message.name)

    async with running(runner(store, "g", handle, consumer="rescuer",
                              options=replace(FAST, claim_idle_ms=300))):
        await wait_for(lambda: handled == ["slow"])
    pending = await store.redis.xpending(store.layout.keys(0).events, "g")
    assert pending["pending"] == 0


# Transient failures (RetryLater) run on a time budget, separate from crash redeliveries.
BUDGET = RetryBudget(budget_s=30, initial_s=0.05, max_s=0.4)


async def test_outage_longer_than_the_crash_budget_ends_handled_not_dead_lettered(
    store: EventStore,
) -> None:
    """A dependency down for more tries than crash redeliveries allow (the old budget, 5
    deliveries in ~0.8 s, dead-lettered it). Counted in tries, not seconds: a loaded machine
    spaces the tries out, and a time-boxed outage then saw too few of them to mean anything."""
    calls: list[str] = []
    handled: list[str] = []
    down_for = FAST.max_deliveries + 1

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        calls.append(message.name)
        if len(calls) <= down_for:
            raise RetryLater("character service is down")
        handled.append(message.name)

    await append_items(store, ["reward"])
    options = replace(FAST, retry_budget=BUDGET)
    async with running(runner(store, "g", handle, options=options)):
        await wait_for(lambda: handled == ["reward"])
    assert len(calls) == down_for + 1  # every failed try retried, the success not repeated
    assert await DeadLetters(store.redis, store.layout).find() == []


async def test_exhausted_time_budget_dead_letters_with_the_reason(store: EventStore) -> None:
    async def handle(envelope: Envelope, message: Message) -> None:
        raise RetryLater("character service is down")

    await append_items(store, ["never"])
    options = replace(FAST, retry_budget=RetryBudget(budget_s=0.5, initial_s=0.05, max_s=0.1))
    letters = DeadLetters(store.redis, store.layout)
    found: list[Any] = []
    async with running(runner(store, "g", handle, options=options)):
        async with asyncio.timeout(10):
            while not found:
                found = await letters.find(DeadLetterFilter(group="g"))
                await asyncio.sleep(0.02)
    assert "character service is down" in found[0].error
    assert "budget 0.5 s" in found[0].error


async def test_a_waiting_retry_holds_no_worker_slot(store: EventStore) -> None:
    """With one worker, an entry waiting out a long back-off does not block the next one."""
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        if message.name == "waits":
            raise RetryLater("down")
        handled.append(message.name)

    agg = await append_items(store, ["waits"])
    options = replace(
        FAST, workers=1, retry_budget=RetryBudget(budget_s=600, initial_s=60, max_s=60)
    )
    async with running(runner(store, "g", handle, options=options)) as r:
        await wait_for(lambda: r.dispatcher.group is not None and len(r._parked) == 1)
        await append_items(store, ["a", "b"], aggregate=agg)
        await wait_for(lambda: handled == ["a", "b"])
    # Stopping handed the waiting entry back to its retry stream, still unacked work.
    retry = store.layout.keys_for(agg).retry("g")
    entries = await store.redis.xrange(retry)
    waiting = [f for _, f in entries if f.get("_due") and f.get("_attempts") == "0"]
    assert waiting and all(f["_later"] == "1" for f in waiting)


async def test_in_order_consumer_waits_in_place_at_an_unknown_type(store: EventStore) -> None:
    """The snapshot projector's kind of group: an unknown type is neither dead-lettered nor
    passed, and nothing later on its shard overtakes it; the next release's consumer takes
    over the pending entries and handles them in order. Other shards keep going."""
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        handled.append(getattr(message, "name", type(message).__name__))

    keys = store.layout.keys(0)
    stranger = Envelope(aggregate_id="x", type="from.the_future", data={"n": 1}).to_fields()
    after = Envelope(aggregate_id="x", type="test.item_added", data={"name": "after"})
    for position, fields in enumerate((stranger, after.to_fields()), start=1):
        await store.redis.xadd(keys.events, fields, id=f"{position}-0")
        await store.redis.set(keys.head, position)
    elsewhere = Envelope(aggregate_id="y", type="test.item_added", data={"name": "elsewhere"})
    await store.redis.xadd(store.layout.keys(1).events, elsewhere.to_fields(), id="1-0")
    await store.redis.set(store.layout.keys(1).head, 1)

    first = Runner(
        store.redis, store.layout, test_registry,
        Subscription("g", "events", {ItemAdded: handle}, in_order=True), options=FAST,
    )
    async with running(first):
        await wait_for(lambda: handled == ["elsewhere"])
        await asyncio.sleep(0.3)  # shard 0 keeps waiting at the unknown type
        assert handled == ["elsewhere"]
    assert await DeadLetters(store.redis, store.layout).find() == []
    assert (await store.redis.xpending(keys.events, "g"))["pending"] >= 1

    newer = MessageRegistry()
    newer.register("test.item_added")(ItemAdded)

    @newer.register("from.the_future")
    class FromTheFuture(Event):
        n: int

    upgraded = Runner(
        store.redis, store.layout, newer,
        Subscription("g", "events", {ItemAdded: handle, FromTheFuture: handle}, in_order=True),
        options=FAST,
    )
    async with running(upgraded):
        await wait_for(lambda: len(handled) == 3)
    assert handled == ["elsewhere", "FromTheFuture", "after"]
    assert await DeadLetters(store.redis, store.layout).find() == []
