"""Run handler functions over a consumer group on every shard (the raw batched path).

At-least-once delivery, bounded concurrency, batched acks; a failing entry goes to the group's
retry stream until ``max_deliveries`` attempts, then to the DLQ — it never blocks its shard.
Entries left by a crashed consumer are claimed after ``claim_idle_ms`` and redelivered.

A subscription ``in_order`` (the snapshot projector: its live messages must leave in version
order) gets one loop per shard that handles the shard's entries one at a time, in log order,
shards in parallel. A failed attempt is retried in place (a later entry must not overtake it)
until ``max_deliveries``, then dead-lettered, and the shard moves on; claims run inside that
loop, between batches. Order holds for one consumer per shard: split shards between processes
(``shards=``) rather than running two consumers of the group on the same shard. On start, such a
loop first takes over every entry left pending on its shard (a previous process died), oldest
first, instead of waiting ``claim_idle_ms`` behind newer entries.

``RetryLater`` (a dependency is down) is retried on its own time budget and an unknown message
type is parked until a release knows it, both on the retry stream with a due time (see
``eventstore.later``); a waiting entry holds no worker slot. In-order loops wait in place.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field

from eventstore.groups import ConsumerGroup, Delivery, Source
from eventstore.keys import Layout
from eventstore.later import (
    RetryBudget,
    park_unknown,
    retries_of,
    retry_later,
    since_of,
    wait_s,
)
from eventstore.later import RetryLater as RetryLater  # handlers raise it; raised here too
from eventstore.metrics import consumer_metrics
from eventstore.redis_client import AsyncRedis
from eventstore.tracing import continued
from schemas.envelope import Envelope, MalformedEntry
from schemas.registry import Message, MessageRegistry, RegistryError, UnknownMessageType

log = logging.getLogger(__name__)

Handler = Callable[[Envelope, Message], Awaitable[None]]


def _span_attributes(group: str, envelope: Envelope) -> dict[str, str | int]:
    """Span attributes and log context of handling ``envelope`` in ``group``."""
    attributes: dict[str, str | int] = {
        "messaging.consumer.group.name": group,
        "eco2.message.type": envelope.type,
        "eco2.aggregate.id": envelope.aggregate_id,
        "eco2.version": envelope.version,
    }
    if envelope.shard is not None:
        attributes["eco2.shard"] = envelope.shard
    if envelope.metadata.correlation_id:
        attributes["eco2.correlation_id"] = envelope.metadata.correlation_id
    return attributes


@dataclass(frozen=True)
class Subscription:
    """A consumer group and the handlers it runs, by message class."""

    group: str
    source: Source
    handlers: Mapping[type[Message], Handler]
    in_order: bool = False  # each shard's entries one at a time, in log order (see above)


@dataclass(frozen=True)
class RunnerOptions:
    workers: int = 64  # messages handled concurrently per process
    batch: int = 100  # entries read per XREADGROUP
    block_ms: int = 1000
    max_deliveries: int = 5
    claim_idle_ms: int = 30_000
    claim_interval_s: float = 1.0
    retry_backoff_s: float = 0.05  # doubled per attempt, capped at 2 s
    retry_budget: RetryBudget = field(default_factory=RetryBudget)  # RetryLater's time budget
    park_max_s: float = 60.0  # longest wait before a parked unknown type is looked at again
    start: str = "0"  # where a new group starts: "0" = the backlog, "$" = new entries only


def consumer_name(prefix: str) -> str:
    """A consumer name unique to this process."""
    return f"{prefix}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def decode(delivery: Delivery, registry: MessageRegistry) -> tuple[Envelope, Message]:
    """The envelope and message of a delivery; raises ``MalformedEntry`` / ``RegistryError``."""
    position = None
    if delivery.stream.endswith(":events"):
        position = int(delivery.entry_id.split("-", 1)[0])
    envelope = Envelope.from_fields(delivery.fields, position=position, shard=delivery.shard)
    return envelope, registry.decode_envelope(envelope)


class Dispatcher:
    """Decide what happens to one delivery: handled and acked, retried, or dead-lettered."""

    def __init__(
        self,
        group: ConsumerGroup,
        subscription: Subscription,
        registry: MessageRegistry,
        options: RunnerOptions,
    ) -> None:
        self.group = group
        self.subscription = subscription
        self.registry = registry
        self.options = options
        self.handled = frozenset(registry.wire_name(cls)[0] for cls in subscription.handlers)
        self.stopping = asyncio.Event()  # set by the runner: in-place waits give up their entry
        self.held = False  # an in-order entry was left pending: later ones must not pass it

    def _ignored(self, delivery: Delivery) -> bool:
        """A well-formed entry of a class this group does not handle: acked without decoding
        (most of a shard log, for most groups). Unknown names still go through the decoder."""
        name = delivery.fields.get("type")
        return name is not None and name not in self.handled and self.registry.knows(name)

    def wait_s(self, delivery: Delivery) -> float:
        """Seconds before ``delivery`` is due (a transient retry or a parked entry)."""
        return wait_s(delivery.fields)

    async def process(self, delivery: Delivery) -> bool:
        """Handle ``delivery``. True: ack it now; False: it was already moved (retry/DLQ)."""
        wait = self.wait_s(delivery)
        if wait > 0:  # not parked by the caller (in-order loop, FastStream): wait here
            await asyncio.sleep(wait)
        if delivery.attempts >= self.options.max_deliveries:
            await self.group.dead_letter(
                delivery,
                f"gave up after {delivery.attempts} deliveries (consumer crashed or timed out)",
                attempts=delivery.attempts,
            )
            return False
        if self._ignored(delivery):
            return True
        try:
            envelope, message = decode(delivery, self.registry)
        except UnknownMessageType as exc:
            # Written by a newer release (rolling deploy): wait for a consumer that knows it.
            moved = await park_unknown(
                self.group, delivery, exc, self.options.retry_budget, self.options.park_max_s,
                in_order=self.subscription.in_order, stopping=self.stopping,
            )
            self.held = self.subscription.in_order
            return moved
        except (MalformedEntry, RegistryError) as exc:
            # Poison: retrying cannot help. Dead-letter at once, the shard moves on.
            await self.group.dead_letter(delivery, f"{type(exc).__name__}: {exc}", attempts=1)
            return False
        handler = self.subscription.handlers.get(type(message))
        if handler is None:
            return True
        attempts = delivery.attempts
        since, retries = since_of(delivery.fields, time.time()), retries_of(delivery.fields)
        while True:
            try:
                with self._handling(envelope):
                    await handler(envelope, message)
                return True
            except asyncio.CancelledError:
                raise
            except RetryLater as exc:
                in_order = self.subscription.in_order
                budget = self.options.retry_budget
                if not await retry_later(self.group, delivery, exc, budget, since, retries, in_order):
                    return False
                retries += 1
            except Exception as exc:
                attempts += 1
                if not await self._failed(delivery, exc, attempts):
                    return False

    @contextlib.contextmanager
    def _handling(self, envelope: Envelope) -> Iterator[None]:
        """One handler run: a span continuing the message's trace, and its duration and
        outcome in ``eco2_handler_duration_seconds``."""
        group = self.group.group
        outcome, started = "ok", time.perf_counter()
        try:
            with continued(envelope.metadata.trace, f"{group} {envelope.type}",
                           attributes=_span_attributes(group, envelope)):
                yield
        except RetryLater:
            outcome = "retry_later"
            raise
        except Exception:
            outcome = "error"
            raise
        finally:
            consumer_metrics().handled.labels(group, envelope.type, outcome).observe(
                time.perf_counter() - started)

    async def _failed(self, delivery: Delivery, exc: Exception, attempts: int) -> bool:
        """Settle failed attempt ``attempts``: True to try again here, False when moved away."""
        error = f"{type(exc).__name__}: {exc}"
        if attempts >= self.options.max_deliveries:
            log.error("dead-lettering %s after %d attempts: %s", delivery.origin, attempts, error)
            await self.group.dead_letter(delivery, error, attempts=attempts)
            return False
        log.warning("attempt %d of %s failed: %s", attempts, delivery.origin, error)
        await asyncio.sleep(min(self.options.retry_backoff_s * 2 ** (attempts - 1), 2.0))
        if self.subscription.in_order:
            return True
        await self.group.retry(delivery, error)
        return False


class Runner:
    """Consume a subscription on ``shards`` (default all) until cancelled."""

    def __init__(
        self,
        redis: AsyncRedis,
        layout: Layout,
        registry: MessageRegistry,
        subscription: Subscription,
        *,
        consumer: str | None = None,
        options: RunnerOptions | None = None,
        shards: list[int] | None = None,
    ) -> None:
        consumer_metrics()  # registered at start: a scrape shows the families before any message
        self.options = options or RunnerOptions()
        self.group = ConsumerGroup(
            redis,
            layout,
            group=subscription.group,
            source=subscription.source,
            consumer=consumer or consumer_name(subscription.group),
        )
        self.dispatcher = Dispatcher(self.group, subscription, registry, self.options)
        self.shards = shards if shards is not None else list(range(layout.shards))
        self._slots = asyncio.Semaphore(self.options.workers)
        self._in_flight: dict[str, set[str]] = defaultdict(set)
        self._acks: dict[str, list[str]] = defaultdict(list)
        self._ack_ready = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._parked: dict[asyncio.Task[None], Delivery] = {}  # waiting for their due time
        self.processed = 0
        self._busy = 0
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        """Consume until cancelled or ``stop()``; then finish in-flight work and flush acks.

        Loops end by a flag rather than by cancellation: cancelling a blocking XREADGROUP in
        redis-py can leave its connection stuck, so a read is always allowed to finish
        (at most ``block_ms``).
        """
        await self.group.ensure(self.shards, start=self.options.start)
        in_order = self.dispatcher.subscription.in_order
        read_loop = self._in_order_loop if in_order else self._read_loop
        loops = [asyncio.create_task(read_loop(shard)) for shard in self.shards]
        loops += [asyncio.create_task(self._claim_loop()), asyncio.create_task(self._ack_loop())]
        try:
            await self._stopped.wait()
        finally:
            self._stopped.set()
            self.dispatcher.stopping.set()
            self._ack_ready.set()
            _, stuck = await asyncio.wait(loops, timeout=self.options.block_ms / 1000 + 5)
            for task in stuck:
                task.cancel()
            await self._unpark()
            await self.drain()

    def stop(self) -> None:
        self._stopped.set()

    async def _read_loop(self, shard: int) -> None:
        while not self._stopped.is_set():
            await self._slots.acquire()  # wait for room, without reserving it
            self._slots.release()
            count = max(1, min(self.options.batch, self.options.workers - self._busy))
            try:
                deliveries = await self.group.read(shard, count=count, block_ms=self.options.block_ms)
            except Exception:
                log.exception("read from shard %d failed; retrying", shard)
                await asyncio.sleep(1)
                continue
            for delivery in deliveries:
                self._in_flight[delivery.stream].add(delivery.entry_id)
            for delivery in deliveries:
                await self._dispatch(delivery)

    async def _dispatch(self, delivery: Delivery) -> None:
        """Start ``delivery`` in a worker slot, or park it without one until it is due."""
        wait = self.dispatcher.wait_s(delivery)
        if wait <= 0:
            await self._slots.acquire()
            self._start(delivery)
            return
        self._in_flight[delivery.stream].add(delivery.entry_id)  # touched: nobody claims it
        task = asyncio.create_task(self._when_due(delivery, wait))
        self._parked[task] = delivery
        task.add_done_callback(lambda done: self._parked.pop(done, None))

    async def _when_due(self, delivery: Delivery, wait: float) -> None:
        await asyncio.sleep(wait)
        task = asyncio.current_task()
        if task is not None:
            self._parked.pop(task, None)
        await self._slots.acquire()
        self._start(delivery)

    async def _unpark(self) -> None:
        """On stop, hand entries still waiting back to the retry stream (due time kept), so
        the next consumer does not count the stop as a crashed delivery."""
        for task, delivery in list(self._parked.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await self.group.requeue(delivery, {})
            except Exception:
                log.exception("could not hand back %s; a claim will", delivery.origin)
            self._in_flight[delivery.stream].discard(delivery.entry_id)

    async def _take_over(self, shard: int) -> None:
        """In-order mode runs one consumer per shard, so what is pending on the shard was left
        by a previous process: finish it first, oldest first, rather than after
        ``claim_idle_ms`` behind newer entries."""
        seen: set[str] = set()
        while not self._stopped.is_set():
            claimed = await self.group.claim(shard, min_idle_ms=0, count=self.options.batch)
            fresh = [d for d in claimed if d.entry_id not in seen]
            if not fresh:
                return
            seen.update(d.entry_id for d in fresh)
            await self._handle_in_turn(fresh)
            await self._flush_acks()  # so the next claim starts past these

    async def _in_order_loop(self, shard: int) -> None:
        try:
            await self._take_over(shard)
        except Exception:
            log.exception("taking over shard %d's pending entries failed; claims will", shard)
        loop = asyncio.get_running_loop()
        next_claim = loop.time() + self.options.claim_interval_s
        while not self._stopped.is_set():
            try:
                deliveries: list[Delivery] = []
                if loop.time() >= next_claim:
                    next_claim = loop.time() + self.options.claim_interval_s
                    deliveries = await self.group.claim(
                        shard, min_idle_ms=self.options.claim_idle_ms, count=self.options.batch
                    )
                if not deliveries:
                    deliveries = await self.group.read(
                        shard, count=self.options.batch, block_ms=self.options.block_ms
                    )
            except Exception:
                log.exception("read from shard %d failed; retrying", shard)
                await asyncio.sleep(1)
                continue
            await self._handle_in_turn(deliveries)

    async def _handle_in_turn(self, deliveries: list[Delivery]) -> None:
        """Handle ``deliveries`` one at a time, in order: the whole batch, even when stopping —
        unless an entry was left pending (an unknown type): nothing may overtake it."""
        for delivery in deliveries:
            self._in_flight[delivery.stream].add(delivery.entry_id)
        for delivery in deliveries:
            if self.dispatcher.held:
                return
            await self._slots.acquire()
            self._begin(delivery)
            await self._handle(delivery)

    def _begin(self, delivery: Delivery) -> None:
        self._in_flight[delivery.stream].add(delivery.entry_id)
        self._busy += 1

    def _start(self, delivery: Delivery) -> None:
        self._begin(delivery)
        task = asyncio.create_task(self._handle(delivery))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, delivery: Delivery) -> None:
        try:
            ack = await self.dispatcher.process(delivery)
            if ack:
                self._acks[delivery.stream].append(delivery.entry_id)
                self._ack_ready.set()
            self.processed += 1
        except Exception:
            # Redis trouble while retrying/dead-lettering: leave it pending; a claim retries it.
            log.exception("could not settle %s", delivery.origin)
        finally:
            self._in_flight[delivery.stream].discard(delivery.entry_id)
            self._busy -= 1
            self._slots.release()

    async def _ack_loop(self) -> None:
        while not self._stopped.is_set():
            await self._ack_ready.wait()
            self._ack_ready.clear()
            await asyncio.sleep(0.002)  # let a few more complete: one XACK per batch
            await self._flush_acks()

    async def _flush_acks(self) -> None:
        pending, self._acks = self._acks, defaultdict(list)
        for stream, ids in pending.items():
            try:
                await self.group.ack(stream, *ids)
            except Exception:
                log.exception("ack failed; entries will be redelivered by a claim")

    async def _claim_loop(self) -> None:
        touch_every = max(self.options.claim_idle_ms / 3000, 0.05)
        last_touch = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopped.is_set():
            await asyncio.sleep(min(self.options.claim_interval_s, touch_every))
            try:
                if loop.time() - last_touch >= touch_every:
                    for stream, ids in list(self._in_flight.items()):
                        await self.group.touch(stream, list(ids))
                    last_touch = loop.time()
                if self.dispatcher.subscription.in_order:
                    continue  # claimed by each shard's loop, in its turn
                for shard in self.shards:
                    if self._busy >= self.options.workers:
                        break
                    claimed = await self.group.claim(
                        shard, min_idle_ms=self.options.claim_idle_ms, count=self.options.batch
                    )
                    for delivery in claimed:
                        if delivery.entry_id in self._in_flight[delivery.stream]:
                            continue
                        await self._dispatch(delivery)
            except Exception:
                log.exception("claim sweep failed; retrying")

    async def drain(self) -> None:
        """Wait for in-flight handlers and flush acks (for clean shutdown and tests)."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=30)
        pending, self._acks = self._acks, defaultdict(list)
        for stream, ids in pending.items():
            with contextlib.suppress(Exception):
                await self.group.ack(stream, *ids)
