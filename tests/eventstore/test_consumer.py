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

import pytest
import redis.asyncio as aioredis

from eventstore.consumer import Runner, RunnerOptions, Subscription
from eventstore.dlq import DeadLetterFilter, DeadLetters
from eventstore.keys import Layout
from eventstore.store import EventStore
from schemas.envelope import Envelope
from schemas.registry import Message
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis

FAST = RunnerOptions(block_ms=50, claim_idle_ms=300, claim_interval_s=0.05, retry_backoff_s=0.01)


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


async def test_unknown_type_in_log_is_dead_lettered_not_crashed_on(store: EventStore) -> None:
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        handled.append(message.name)

    keys = store.layout.keys(0)
    stranger = Envelope(aggregate_id="x", type="from.the_future", data={}).to_fields()
    await store.redis.xadd(keys.events, stranger, id="1-0")
    await store.redis.set(keys.head, 1)
    await store.redis.xadd(keys.events, {"garbage": "yes"}, id="2-0")
    await store.redis.set(keys.head, 2)
    later = Envelope(aggregate_id="x", type="test.item_added", data={"name": "after"})
    await store.redis.xadd(keys.events, later.to_fields(), id="3-0")
    await store.redis.set(keys.head, 3)
    async with running(runner(store, "g", handle)):
        await wait_for(lambda: handled == ["after"])
    letters = await DeadLetters(store.redis, store.layout).find()
    assert sorted(letter.error.split(":")[0] for letter in letters) == [
        "MalformedEntry",
        "UnknownMessageType",
    ]


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

    async with running(runner(store, "g", handle, consumer="rescuer")):
        await wait_for(lambda: handled == ["slow"])
    pending = await store.redis.xpending(store.layout.keys(0).events, "g")
    assert pending["pending"] == 0
