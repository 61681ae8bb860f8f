"""The consume rows of ``eco2 bench append``: the handler runtime (FastStream subscribers,
``eventstore.runtime``) against its baseline measured on the same backlog in the same run, a
raw XREADGROUP batch loop handing every entry to the same ``Dispatcher``; both with a no-op
handler, so the rows compare what the runtime costs per entry.

Each is timed from its start (groups created, subscribers started) to the end of the run of
the last entry: the rate at which a backlog is handled. Not the stop after it: the runtime's
graceful stop waits a fixed ``block_ms`` + 0.25 s for reads still blocked in Redis (0.36 s,
6-8 % of a 125,000-entry run, whatever the backlog), the raw loop's shard loops up to
``block_ms`` for their last read; until 2026-12-07 both stops were counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from eventstore.consumer import Dispatcher, RunnerOptions, Subscription
from eventstore.groups import ConsumerGroup
from eventstore.runtime import Runner
from eventstore.store import EventStore
from infra.bench.ticks import Figure, Tick, bench_registry
from schemas.envelope import Envelope
from schemas.registry import Message

CONSUME_BASELINE = "consume, baseline: raw XREADGROUP batch loop (no-op)"
CONSUME_RUNTIME = "consume, handler runtime: FastStream subscribers (no-op)"
BLOCK_MS = 100  # how long both consumers' reads wait in Redis for entries


class Count:
    """A no-op handler's runs: ``done`` is set, and ``done_at`` taken, once it has run
    ``total`` times."""

    def __init__(self, total: int) -> None:
        self.total, self.seen = total, 0
        self.done = asyncio.Event()
        self.done_at = 0.0

    async def noop(self, envelope: Envelope, message: Message) -> None:
        self.seen += 1
        if self.seen == self.total:
            self.done_at = time.perf_counter()
            self.done.set()


async def until_done(name: str, count: Count, work: Callable[[], Awaitable[None]]) -> Figure:
    """The figure of ``count.total`` entries handled by ``work``, timed from its start to the
    last run (``work`` still ends, unmeasured)."""
    started = time.perf_counter()
    await work()
    return Figure(name, count.total, count.done_at - started)


async def consume_raw(store: EventStore, total: int) -> Figure:
    """The baseline: the old hand-written runner's core, a raw XREADGROUP COUNT 200 loop per
    shard handing every entry to the same ``Dispatcher`` (decode, handler, metrics), all of a
    batch at once, with one XACK per batch."""
    count = Count(total)
    done = count.done
    subscription = Subscription("bench-raw", "events", {Tick: count.noop})
    group = ConsumerGroup(store.redis, store.layout, group=subscription.group,
                          source="events", consumer="bench-raw")
    dispatcher = Dispatcher(group, subscription, bench_registry, RunnerOptions())

    async def shard_loop(shard: int) -> None:
        while not done.is_set():
            deliveries = await group.read(shard, count=200, block_ms=BLOCK_MS)
            settled = await asyncio.gather(*(dispatcher.process(d) for d in deliveries))
            acks: dict[str, list[str]] = {}
            for delivery, ack in zip(deliveries, settled, strict=True):
                if ack:
                    acks.setdefault(delivery.stream, []).append(delivery.entry_id)
            for stream, ids in acks.items():
                await group.ack(stream, *ids)

    async def work() -> None:
        await group.ensure(range(store.layout.shards))
        await asyncio.gather(*(shard_loop(shard) for shard in range(store.layout.shards)))

    return await until_done(CONSUME_BASELINE, count, work)


async def consume_faststream(redis_url: str | None, store: EventStore, total: int) -> Figure:
    """The main path: the handler runtime (FastStream batch subscribers, ``eventstore.runtime``)."""
    count = Count(total)
    runner = Runner(
        store.redis, store.layout, bench_registry,
        Subscription("bench-fs", "events", {Tick: count.noop}),
        options=RunnerOptions(workers=256, batch=200, block_ms=BLOCK_MS), url=redis_url,
    )

    async def work() -> None:
        task = asyncio.create_task(runner.run())
        waiter = asyncio.create_task(count.done.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        runner.stop()
        await task  # a runner that failed raises here
        if not count.done.is_set():
            raise RuntimeError(f"the runtime stopped after {count.seen} of {count.total} entries")

    return await until_done(CONSUME_RUNTIME, count, work)
