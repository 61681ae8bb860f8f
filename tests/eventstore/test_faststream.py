"""The FastStream runtime in both reading modes: every entry handled once, poison dead-lettered."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from eventstore.consumer import RunnerOptions, Subscription
from eventstore.dlq import DeadLetters
from eventstore.keys import Layout
from eventstore.runtime import Runner
from eventstore.store import EventStore
from schemas.envelope import Envelope
from schemas.registry import Message
from tests.conftest import ids_on_shard
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis

FAST = RunnerOptions(block_ms=50, claim_idle_ms=300, claim_interval_s=0.05, retry_backoff_s=0.01)


@contextlib.asynccontextmanager
async def running(runner: Runner) -> AsyncIterator[None]:
    task = asyncio.create_task(runner.run())
    try:
        yield
    finally:
        runner.stop()
        await asyncio.wait_for(task, 10)


@pytest.mark.parametrize("per_message", [False, True], ids=["batch", "max_workers"])
async def test_faststream_path_handles_everything_and_dead_letters_poison(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str, per_message: bool
) -> None:
    store = EventStore(redis_client, layout, test_registry)
    names = [f"n{i}" for i in range(200)] + ["poison"]
    for i in range(0, len(names), 20):
        agg = str(uuid.uuid4())
        envs = [test_registry.envelope(ItemAdded(name=n), aggregate_id=agg) for n in names[i : i + 20]]
        await store.append(envs, expected_version=0)
    seen: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        if message.name == "poison":
            raise ValueError("indigestible")
        seen.append(message.name)

    # Claims are for dead consumers: one that is merely slow (a loaded machine queues these
    # 201 entries for longer than FAST's 300 ms) must not have its entries taken and handled
    # twice, which at-least-once delivery would allow and this test counts exactly.
    runner = Runner(
        redis_client, layout, test_registry, Subscription("fs", "events", {ItemAdded: handle}),
        options=dataclasses.replace(FAST, claim_idle_ms=10_000, per_message=per_message),
        url=redis_url,
    )
    letters = DeadLetters(redis_client, layout)

    async def pending() -> int:
        return sum([(await redis_client.xpending(layout.keys(shard).events, "fs"))["pending"]
                    for shard in range(layout.shards)])

    async with running(runner):
        async with asyncio.timeout(20):  # every entry handled, or dead-lettered, and acked
            while len(seen) < 200 or not await letters.find() or await pending():
                await asyncio.sleep(0.05)
    assert sorted(seen) == sorted(names[:-1])
    [letter] = await letters.find()
    assert "indigestible" in letter.error and letter.attempts == FAST.max_deliveries


def counting(enough: int) -> tuple[Callable[[Envelope, Message], Awaitable[None]], asyncio.Event]:
    """A handler and the event it sets once it has run ``enough`` times."""
    handled, seen = asyncio.Event(), 0

    async def handle(envelope: Envelope, message: Message) -> None:
        nonlocal seen
        seen += 1
        if seen >= enough:
            handled.set()

    return handle, handled


async def test_a_stop_ends_the_reads_before_closing_their_connections(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """FastStream's own stop cancels its read loops without waiting and closes the connections
    at once: a read the cancellation had not reached yet saw its connection close, logged as an
    ERROR ("Message fetch error ... Connection closed by server") at most stops in the middle
    of a backlog. Every stop here ends the reads first: none logs an error."""
    store = EventStore(redis_client, layout, test_registry)
    for _ in range(40):
        await store.append_batch([
            ([test_registry.envelope(ItemAdded(name=f"n{i}"), aggregate_id=str(uuid.uuid4()))], 0)
            for i in range(100)
        ])
    caplog.set_level(logging.WARNING)
    for round_ in range(6):
        handle, handled = counting(100)
        runner = Runner(
            redis_client, layout, test_registry,
            Subscription(f"busy{round_}", "events", {ItemAdded: handle}), options=FAST,
            url=redis_url,
        )
        async with running(runner):
            await asyncio.wait_for(handled.wait(), 10)  # stopped in the middle of the backlog
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_long_handler_keeps_its_entry_from_other_consumers_claims(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str
) -> None:
    """A handler running for several claim-idle periods is not taken over by a second
    consumer's reaper (the heartbeat touches its entry): it runs once. The claim-idle time is
    a second, so only an event-loop stall of 800 ms (a loaded machine) could let a claim in."""
    store = EventStore(redis_client, layout, test_registry)
    await store.append([test_registry.envelope(ItemAdded(name="long"), aggregate_id="a")],
                       expected_version=0)
    runs: list[str] = []
    finished = asyncio.Event()

    def consumer(name: str) -> Runner:
        async def handle(envelope: Envelope, message: Message) -> None:
            runs.append(name)
            await asyncio.sleep(3)  # three claim-idle periods
            finished.set()

        return Runner(
            redis_client, layout, test_registry, Subscription("hb", "events", {ItemAdded: handle}),
            consumer=name, url=redis_url,
            options=dataclasses.replace(FAST, claim_idle_ms=1000, per_message=True),
        )

    async with running(consumer("first")):
        async with asyncio.timeout(20):
            while not runs:
                await asyncio.sleep(0.02)
        async with running(consumer("second")):
            await asyncio.wait_for(finished.wait(), 20)
            await asyncio.sleep(1.5)  # more than a claim-idle period after it finished
    assert runs == ["first"]
    pending = await redis_client.xpending(layout.keys_for("a").events, "hb")
    assert pending["pending"] == 0


def test_subscribers_read_their_stream_settings_without_copying_them() -> None:
    """FastStream asks each subscriber for its ``StreamSub`` on every read; ours hand back the
    same settings (no deep copy per poll), and still copy when a broker prefix is set."""

    async def noop(envelope: Envelope, message: Message) -> None:
        pass

    runner = Runner(aioredis.Redis(), Layout("t", 1), test_registry,
                    Subscription("g", "events", {ItemAdded: noop}))
    subscribers = list(runner.broker.subscribers)
    assert len(subscribers) == 4  # a reader and a reaper on the source and the retry stream
    for subscriber in subscribers:
        settings = subscriber.stream_sub  # type: ignore[attr-defined]
        assert settings is subscriber.stream_sub  # type: ignore[attr-defined]
        prefixed = settings.add_prefix("p:")
        assert prefixed is not settings and prefixed.name == "p:" + settings.name
        assert prefixed.group == settings.group == "g"


async def test_a_per_message_read_runs_each_entry_alone_within_the_worker_slots(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str
) -> None:
    """One read of ten entries in per-message mode: a slow entry holds up none of the other
    nine, at most ``workers`` handlers run at once, and each entry is acked once it settled
    (the nine while the slow one is still pending)."""
    store = EventStore(redis_client, layout, test_registry)
    agg = str(uuid.uuid4())
    names = ["slow"] + [f"n{i}" for i in range(9)]
    await store.append([test_registry.envelope(ItemAdded(name=n), aggregate_id=agg)
                        for n in names], expected_version=0)
    release = asyncio.Event()
    seen: list[str] = []
    busy = most = 0

    async def handle(envelope: Envelope, message: Message) -> None:
        nonlocal busy, most
        assert isinstance(message, ItemAdded)
        busy += 1
        most = max(most, busy)
        try:
            if message.name == "slow":
                await release.wait()
            else:
                await asyncio.sleep(0.01)
            seen.append(message.name)
        finally:
            busy -= 1

    runner = Runner(
        redis_client, layout, test_registry, Subscription("pm", "events", {ItemAdded: handle}),
        options=dataclasses.replace(FAST, claim_idle_ms=10_000, per_message=True, workers=3),
        url=redis_url,
    )
    stream = layout.keys_for(agg).events

    async def pending() -> int:
        return int((await redis_client.xpending(stream, "pm"))["pending"])

    async with running(runner):
        async with asyncio.timeout(10):
            while len(seen) < 9 or await pending() != 1:
                await asyncio.sleep(0.02)
        assert "slow" not in seen and most <= 3
        release.set()
        async with asyncio.timeout(10):
            while await pending():
                await asyncio.sleep(0.02)
    assert sorted(seen) == sorted(names)


async def test_a_stopping_per_message_reader_starts_nothing_more_and_hands_the_rest_back(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str
) -> None:
    """One worker slot, taken by a slow entry; two more entries read meanwhile by the readers
    of two other shards (reads already waiting in Redis when the slot was taken, the most a
    per-message reader holds unstarted): the stop lets the slow one finish, starts neither of
    the others, and hands them back for the next consumer."""
    store = EventStore(redis_client, layout, test_registry)
    [slow_agg], [b_agg], [c_agg] = (ids_on_shard(layout, shard, 1) for shard in (0, 1, 2))
    started: list[str] = []
    release = asyncio.Event()

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        started.append(message.name)
        if message.name == "slow":
            await release.wait()

    async def append(name: str, agg: str) -> None:
        await store.append([test_registry.envelope(ItemAdded(name=name), aggregate_id=agg)],
                           expected_version=0)

    options = dataclasses.replace(FAST, claim_idle_ms=600_000, per_message=True, workers=1)
    sub = Subscription("pm", "events", {ItemAdded: handle})
    first = Runner(redis_client, layout, test_registry, sub, options=options, url=redis_url)
    task = asyncio.create_task(first.run())
    await append("slow", slow_agg)
    async with asyncio.timeout(10):
        while started != ["slow"]:
            await asyncio.sleep(0.02)
    await append("b", b_agg)
    await append("c", c_agg)
    async with asyncio.timeout(10):  # both read, waiting for the slot
        while [(await redis_client.xpending(layout.keys_for(agg).events, "pm"))["pending"]
               for agg in (b_agg, c_agg)] != [1, 1]:
            await asyncio.sleep(0.02)
    first.stop()
    await asyncio.sleep(0.2)  # the stop is under way while "slow" still runs
    release.set()
    await asyncio.wait_for(task, 20)
    assert started == ["slow"]
    handed_back = [fields["data"] for agg in (b_agg, c_agg)
                   for _, fields in await redis_client.xrange(layout.keys_for(agg).retry("pm"))]
    assert sorted(handed_back) == ['{"name":"b","quantity":1}', '{"name":"c","quantity":1}']
    async with running(Runner(redis_client, layout, test_registry, sub, options=options,
                              url=redis_url)):
        async with asyncio.timeout(10):
            while sorted(started) != ["b", "c", "slow"]:
                await asyncio.sleep(0.02)


async def test_a_busy_per_message_reader_leaves_what_it_cannot_start_to_another_consumer(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str
) -> None:
    """Twenty slow entries on one shard, a consumer with two worker slots: it reads no more
    than it can start, so a second consumer started once the first is saturated runs the
    waiting entries while the first's are still blocked (rather than finding them all held,
    pending, by the busy one). Neither ever holds more entries pending than its slots."""
    store = EventStore(redis_client, layout, test_registry)
    names = [f"n{i}" for i in range(20)]
    for name, agg in zip(names, ids_on_shard(layout, 0, len(names)), strict=True):
        await store.append([test_registry.envelope(ItemAdded(name=name), aggregate_id=agg)],
                           expected_version=0)
    release = asyncio.Event()
    ran: dict[str, list[str]] = {"first": [], "second": []}
    most: dict[str, int] = {}
    stream = layout.keys(0).events

    def consumer(name: str) -> Runner:
        async def handle(envelope: Envelope, message: Message) -> None:
            assert isinstance(message, ItemAdded)
            ran[name].append(message.name)
            await release.wait()

        return Runner(
            redis_client, layout, test_registry, Subscription("pmb", "events", {ItemAdded: handle}),
            consumer=name, shards=[0], url=redis_url,
            options=dataclasses.replace(FAST, claim_idle_ms=10_000, per_message=True, workers=2),
        )

    async def watch() -> None:  # the most entries each consumer held pending, while blocked
        while not release.is_set():
            for row in (await redis_client.xpending(stream, "pmb"))["consumers"]:
                most[row["name"]] = max(most.get(row["name"], 0), int(row["pending"]))
            await asyncio.sleep(0.01)

    first = consumer("first")
    async with running(first):
        await asyncio.wait_for(first.started.wait(), 10)  # the group exists
        watcher = asyncio.create_task(watch())
        async with asyncio.timeout(10):
            while len(ran["first"]) < 2:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # several reads' time: the busy consumer reads no further
        async with running(consumer("second")):
            async with asyncio.timeout(10):
                while len(ran["second"]) < 2:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            assert [len(ran["first"]), len(ran["second"])] == [2, 2]  # all still blocked
            release.set()
            await watcher
            async with asyncio.timeout(10):
                while (len(ran["first"]) + len(ran["second"]) < len(names)
                       or (await redis_client.xpending(stream, "pmb"))["pending"]):
                    await asyncio.sleep(0.02)
    assert most == {"first": 2, "second": 2}
    assert sorted(ran["first"] + ran["second"]) == sorted(names)


async def test_a_one_shard_per_message_reader_keeps_reading_while_a_run_is_slow(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str
) -> None:
    """A reader of one shard waits for no more than half its process's slots before it reads
    again: an entry arriving while the only run is blocked starts at once (a read sized to
    every slot would wait for that run to finish, one entry at a time under a light load)."""
    store = EventStore(redis_client, layout, test_registry)
    first, second = ids_on_shard(layout, 0, 2)
    release = asyncio.Event()
    ran: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        ran.append(message.name)
        if message.name == "slow":
            await release.wait()

    runner = Runner(
        redis_client, layout, test_registry, Subscription("pm1", "events", {ItemAdded: handle}),
        consumer="only", shards=[0], url=redis_url,
        options=dataclasses.replace(FAST, per_message=True, workers=2),
    )
    async with running(runner):
        await asyncio.wait_for(runner.started.wait(), 10)
        await store.append([test_registry.envelope(ItemAdded(name="slow"), aggregate_id=first)],
                           expected_version=0)
        async with asyncio.timeout(10):
            while ran != ["slow"]:
                await asyncio.sleep(0.02)
        await store.append([test_registry.envelope(ItemAdded(name="next"), aggregate_id=second)],
                           expected_version=0)
        try:
            async with asyncio.timeout(10):
                while ran != ["slow", "next"]:
                    await asyncio.sleep(0.02)
        finally:
            release.set()
