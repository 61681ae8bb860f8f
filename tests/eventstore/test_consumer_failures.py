"""Consumer groups when things fail: dead letters and their replay, killed consumers, stops,
outages, retry budgets."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest

from eventstore.consumer import RetryLater, Subscription
from eventstore.dlq import DeadLetterFilter, DeadLetters
from eventstore.later import RetryBudget
from eventstore.runtime import Runner
from eventstore.store import EventStore
from schemas.envelope import Envelope
from schemas.registry import Event, Message, MessageRegistry
from tests.eventstore.consumers import FAST, append_items, runner, running, wait_for
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis


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


async def test_a_stopping_consumer_hands_back_what_a_cut_read_left_it(store: EventStore) -> None:
    """A read cut short by a stop can leave entries delivered to the stopping consumer that it
    never saw. It hands them back on its retry stream, so the next consumer handles them at
    once, not after ``claim_idle_ms`` (here far beyond the wait)."""
    handled: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        handled.append(message.name)

    patient = replace(FAST, claim_idle_ms=600_000)
    first = runner(store, "g", handle, options=patient)
    await first.group.ensure(first.shards)
    keys = store.layout.keys(0)
    cut = test_registry.envelope(ItemAdded(name="cut"), aggregate_id="x")
    await store.redis.xadd(keys.events, cut.to_fields(), id="1-0")
    await store.redis.set(keys.head, 1)
    # The read the stop cuts short: Redis delivers the entry to the consumer, the reply is lost.
    await store.redis.xreadgroup("g", first.group.consumer, {keys.events: ">"}, count=10)
    async with running(first):
        await first.started.wait()
    assert handled == []
    assert (await store.redis.xpending(keys.events, "g"))["pending"] == 0
    [(_, fields)] = await store.redis.xrange(keys.retry("g"))
    assert fields["_origin"] == f"{keys.events}/1-0" and fields["_attempts"] == "0"

    async with running(runner(store, "g", handle, options=patient)):
        await wait_for(lambda: handled == ["cut"])


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
