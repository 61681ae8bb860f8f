"""Run a subscription as FastStream subscribers: one batch subscriber per shard stream.

Each shard's source stream and the group's retry stream get a ``StreamSub`` in the consumer
group: in batch mode (default: throughput) up to ``batch`` entries per read, handled together;
with ``batch=False`` one entry per call and FastStream's ``max_workers=options.workers`` calls at a
time (slow, I/O-bound handlers). Entries written by
our Lua script carry no ``__data__`` field, so FastStream hands them over as plain field dicts.
FastStream acks a batch when the handler returns; failures inside it were already moved to the
retry stream or the DLQ by the shared ``Dispatcher``. A claim task recovers entries of crashed
consumers, which FastStream alone would leave pending forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from faststream import FastStream
from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub
from faststream.redis.annotations import RedisStreamMessage

from eventstore.consumer import Dispatcher, RunnerOptions, Subscription, consumer_name
from eventstore.groups import ConsumerGroup, Delivery
from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from schemas.registry import MessageRegistry

log = logging.getLogger(__name__)


async def faststream_app(
    redis_url: str,
    layout: Layout,
    registry: MessageRegistry,
    subscription: Subscription,
    *,
    options: RunnerOptions | None = None,
    consumer: str | None = None,
    batch: bool = True,
) -> FastStream:
    """A FastStream application consuming ``subscription`` on every shard."""
    if subscription.in_order:  # two subscribers per shard and a separate claim task
        raise ValueError(f"{subscription.group!r} must run in log order: use the Runner")
    options = options or RunnerOptions()
    consumer = consumer or consumer_name(subscription.group)
    redis = await open_redis(redis_url, decode_responses=True, socket_connect_timeout=5)
    broker_class = RedisClusterBroker if isinstance(redis, aioredis.RedisCluster) else RedisBroker
    broker = broker_class(redis_url, logger=None)  # type: ignore[arg-type]  # None: no access log per batch
    group = ConsumerGroup(
        redis, layout, group=subscription.group, source=subscription.source, consumer=consumer
    )
    dispatcher = Dispatcher(group, subscription, registry, options)

    for shard in range(layout.shards):
        for stream in group.streams(shard):
            _subscribe(broker, dispatcher, shard, stream, consumer, options, batch=batch)

    app = FastStream(broker)
    claimer: list[asyncio.Task[None]] = []

    @app.on_startup
    async def create_groups() -> None:
        # Groups exist before the subscribers start: FastStream would create them at "$"
        # (skipping the backlog) or stop on NOGROUP.
        await group.ensure(range(layout.shards), start=options.start)

    @app.after_startup
    async def start_claims() -> None:
        claimer.append(asyncio.create_task(_claim_loop(group, dispatcher, options, layout)))

    @app.on_shutdown
    async def stop_claims() -> None:
        for task in claimer:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await redis.aclose()

    return app


def _subscribe(
    broker: RedisBroker | RedisClusterBroker,
    dispatcher: Dispatcher,
    shard: int,
    stream: str,
    consumer: str,
    options: RunnerOptions,
    *,
    batch: bool,
) -> None:
    sub = StreamSub(
        stream,
        group=dispatcher.subscription.group,
        consumer=consumer,
        batch=batch,
        max_records=options.batch if batch else None,
        polling_interval=options.block_ms,
    )

    async def on_entry(msg: RedisStreamMessage) -> None:
        # A single entry without __data__ arrives with an empty body: read the raw fields.
        [entry_id] = msg.raw_message["message_ids"]
        raw = msg.raw_message["data"]
        assert isinstance(raw, dict)
        fields = {_text(k): _text(v) for k, v in raw.items()}
        attempts = int(fields.get("_attempts", 0))
        await dispatcher.process(Delivery(shard, stream, _text(entry_id), fields, attempts))

    if not batch:
        broker.subscriber(stream=sub, max_workers=options.workers)(on_entry)
        return

    async def on_batch(body: list[dict[str, Any]], msg: RedisStreamMessage) -> None:
        ids = msg.raw_message["message_ids"]
        deliveries = [
            Delivery(shard, stream, _text(entry_id), fields, int(fields.get("_attempts", 0)))
            for entry_id, fields in zip(ids, body, strict=True)
        ]
        await asyncio.gather(*(dispatcher.process(d) for d in deliveries))

    # A batch subscriber ignores FastStream's max_workers: concurrency comes from handling a
    # batch's entries together (asyncio.gather above).
    broker.subscriber(stream=sub)(on_batch)


async def _claim_loop(
    group: ConsumerGroup, dispatcher: Dispatcher, options: RunnerOptions, layout: Layout
) -> None:
    while True:
        await asyncio.sleep(options.claim_interval_s)
        try:
            for shard in range(layout.shards):
                for delivery in await group.claim(shard, min_idle_ms=options.claim_idle_ms):
                    if await dispatcher.process(delivery):
                        await group.ack(delivery.stream, delivery.entry_id)
        except Exception:
            log.exception("claim sweep failed; retrying")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
