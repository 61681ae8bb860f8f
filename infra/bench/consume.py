"""The consume rows of ``eco2 bench append``: the handler runtime (FastStream subscribers,
``eventstore.runtime``) against its baseline measured on the same backlog in the same run, a
raw XREADGROUP batch loop handing every entry to the same ``Dispatcher``; both with a no-op
handler, so the rows compare what the runtime costs per entry."""

from __future__ import annotations

import asyncio

from eventstore.consumer import Dispatcher, Handler, RunnerOptions, Subscription
from eventstore.groups import ConsumerGroup
from eventstore.runtime import Runner
from eventstore.store import EventStore
from infra.bench.ticks import Figure, Tick, bench_registry, timed
from schemas.envelope import Envelope
from schemas.registry import Message

CONSUME_BASELINE = "consume, baseline: raw XREADGROUP batch loop (no-op)"
CONSUME_RUNTIME = "consume, handler runtime: FastStream subscribers (no-op)"


def counting_noop(total: int) -> tuple[Handler, asyncio.Event]:
    """A no-op handler and the event it sets once it has run ``total`` times."""
    seen = 0
    done = asyncio.Event()

    async def noop(envelope: Envelope, message: Message) -> None:
        nonlocal seen
        seen += 1
        if seen >= total:
            done.set()

    return noop, done


async def consume_raw(store: EventStore, total: int) -> Figure:
    """The baseline: the old hand-written runner's core, a raw XREADGROUP COUNT 200 loop per
    shard handing every entry to the same ``Dispatcher`` (decode, handler, metrics), all of a
    batch at once, with one XACK per batch."""
    noop, done = counting_noop(total)
    subscription = Subscription("bench-raw", "events", {Tick: noop})
    group = ConsumerGroup(store.redis, store.layout, group=subscription.group,
                          source="events", consumer="bench-raw")
    dispatcher = Dispatcher(group, subscription, bench_registry, RunnerOptions())

    async def shard_loop(shard: int) -> None:
        while not done.is_set():
            deliveries = await group.read(shard, count=200, block_ms=100)
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

    return await timed(CONSUME_BASELINE, total, work)


async def consume_faststream(redis_url: str | None, store: EventStore, total: int) -> Figure:
    """The main path: the handler runtime (FastStream batch subscribers, ``eventstore.runtime``)."""
    noop, done = counting_noop(total)
    runner = Runner(
        store.redis, store.layout, bench_registry,
        Subscription("bench-fs", "events", {Tick: noop}),
        options=RunnerOptions(workers=256, batch=200, block_ms=100), url=redis_url,
    )

    async def work() -> None:
        task = asyncio.create_task(runner.run())
        await done.wait()
        runner.stop()
        await task

    return await timed(CONSUME_RUNTIME, total, work)
