"""The snapshot worker publishes each job's live messages in version order, none missing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections import defaultdict
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

import schemas
from eventstore.consumer import Subscription
from eventstore.keys import Layout
from eventstore.runtime import Runner
from eventstore.store import EventStore
from projections.snapshot import snapshot_subscription
from projections.snapshot_reads import live_messages
from schemas.envelope import Envelope
from schemas.registry import Message
from tests.conftest import ids_on_shard
from tests.gateway.helpers import append, full_scan

JOBS = 12


def with_blips(subscription: Subscription, versions: set[int]) -> Subscription:
    """The subscription with one failed attempt (a Redis hiccup) at each job's ``versions``:
    a run holding one fails before any write, then the entry fails once on its own."""
    blipped: set[tuple[str, int]] = set()
    batch_handler = subscription.batch_handler
    assert batch_handler is not None

    async def blip(envelope: Envelope, message: Message) -> None:
        key = (envelope.aggregate_id, envelope.version)
        if envelope.version in versions and key not in blipped:
            blipped.add(key)
            raise ConnectionError("Redis went away for a moment")
        await subscription.handlers[type(message)](envelope, message)

    async def blip_run(events: Sequence[tuple[Envelope, Message]]) -> None:
        if any(e.version in versions and (e.aggregate_id, e.version) not in blipped
               for e, _ in events):
            raise ConnectionError("Redis went away for a moment")
        await batch_handler(events)

    return dataclasses.replace(subscription, handlers=dict.fromkeys(subscription.handlers, blip),
                               batch_handler=blip_run)


@pytest.mark.redis
@pytest.mark.parametrize("blips", [set(), {4, 7}], ids=["smooth", "transient-failures"])
async def test_live_messages_of_one_shard_arrive_in_version_order(
    redis_client: aioredis.Redis, layout: Layout, redis_url: str, blips: set[int]
) -> None:
    store = EventStore(redis_client, layout, schemas.registry)
    jobs = ids_on_shard(layout, 0, JOBS)
    # The worker's default options (many entries in flight at once), not a tuned-down runner.
    subscription = with_blips(snapshot_subscription(redis_client, layout), blips)
    runner = Runner(redis_client, layout, schemas.registry, subscription)
    listener = aioredis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = listener.pubsub()
    await pubsub.subscribe(layout.keys(0).live)
    assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
    running = asyncio.create_task(runner.run())
    await asyncio.wait_for(runner.started.wait(), 30)  # reading before the first append
    received: dict[str, list[int]] = defaultdict(list)
    try:
        # Every job appends its ten events one at a time, all jobs at once: the shard log
        # interleaves them, and the worker reads them in batches while they arrive.
        async def scan(job: str) -> None:
            for event in full_scan("alice"):
                await append(store, job, "alice", event)

        await asyncio.gather(*(scan(job) for job in jobs))
        # Everything published (none lost, none twice) and then a quiet second.
        while (published := await pubsub.get_message(timeout=1)) is not None:
            for raw in live_messages(published["data"]):
                data = json.loads(raw)
                received[data["job_id"]].append(data["seq"])
    finally:
        runner.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await pubsub.aclose()
        await listener.aclose()
    assert {job: received[job] for job in jobs} == {job: list(range(1, 11)) for job in jobs}
