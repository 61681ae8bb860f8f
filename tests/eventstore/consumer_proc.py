"""A consumer process for crash tests: records what it handles in a Redis list.

Usage: python -m tests.eventstore.consumer_proc <redis_url> <namespace> <group> <consumer>
Items named "slow" take 60 s, so the test can kill the process mid-message.
"""

from __future__ import annotations

import asyncio
import sys

from eventstore.consumer import RunnerOptions, Subscription
from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from eventstore.runtime import Runner
from schemas.envelope import Envelope
from schemas.registry import Message
from tests.eventstore.messages import ItemAdded, test_registry


async def main(url: str, namespace: str, group: str, consumer: str) -> None:
    redis = await open_redis(url, decode_responses=True)

    async def handle(envelope: Envelope, message: Message) -> None:
        assert isinstance(message, ItemAdded)
        await redis.rpush(f"{{{namespace}:s0}}:started", message.name)
        if message.name == "slow":
            await asyncio.sleep(60)
        await redis.rpush(f"{{{namespace}:s0}}:handled:{consumer}", message.name)

    runner = Runner(
        redis,
        Layout(namespace, 4),
        test_registry,
        Subscription(group, "events", {ItemAdded: handle}),
        consumer=consumer,
        options=RunnerOptions(claim_idle_ms=60_000, block_ms=100),
    )
    await runner.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
