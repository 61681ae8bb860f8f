"""The handler runtime: a subscription's consumer group as FastStream Redis subscribers.

Every shard's source stream and the group's retry stream get two ``StreamSub`` subscribers in
the consumer group: a reader (``batch=True``: up to ``batch`` entries per XREADGROUP, handled
together, or with ``per_message`` each on its own for slow handlers, a share of the worker
slots per read, ``eventstore.per_message``;
settled entries are acked by ``AckBatches``, one pipelined round trip every few tens of ms for
all readers) and a reaper (``min_idle_time``: XAUTOCLAIM of entries a crashed consumer left
pending longer than ``claim_idle_ms``, every ``reaper_interval_ms``; their delivery count from
``get_delivery_count``). Groups are created at ``"0"`` first: a new group consumes the backlog.

What each entry becomes (handled, retried, dead-lettered, parked) is decided by the
``Dispatcher`` (``eventstore.consumer``); this module adds what FastStream does not have:

- ``InFlight`` records the entries being handled, a batch at a time; a task touches them
  (XCLAIM, idle time 0) every fifth of ``claim_idle_ms`` so no reaper takes a long handler's
  entry.
- An entry due later (``RetryLater``, a parked unknown type) is not held in a reader: it
  waits in a task of its own (no worker slot, touched like the rest), then is handled and
  acked; on stop it is handed back to the retry stream with its due time (``parking.py``).
- In-order subscriptions (the snapshot projector) read in batches handled in log order, one
  entry at a time or, given a ``batch_handler``, a run of plain entries per call (a failed
  run is handled again entry by entry); at start they first take over every entry left
  pending on their shards (a previous process died), oldest first. An entry that must wait
  in place (an unknown type) blocks its shard's reader until stop and stays pending.

A reader given ``linger_ms`` that read fewer entries than a read takes waits that long once it
has handled the read (per message: started its runs) before FastStream reads again, so a busy
stream with few entries per read (a group that handles one type in ten) is read in fuller
batches. A FastStream read costs ~270 µs of client CPU: the reward worker (one type in eight of
the events log) went from 0.58 to 0.52 ms per scan with the linger (BENCHMARKS, 2026-12-07).

Of a batch whose entries are not all settled, the settled ones are acked and the rest stay
pending for their task, or for the next consumer. Reapers handle what they claim ``workers``
at a time (one at a time in order). The ``workers`` slots bound handler runs per process.

Not FastStream middleware, on purpose: the span continuing each message's trace and the
handler metrics wrap each *entry's* handler run inside the ``Dispatcher`` (a batch message
carries up to ``batch`` entries of different traces, and entries of classes the group does not
handle are acked before any envelope is decoded, without a task of their own).

The main path costs within a few per cent of a hand-written XREADGROUP loop (the consume
rows of ``eco2 bench append``): no dependency injection (``apply_types=False``: it solved the
``RedisStreamMessage`` argument in a worker thread per message), ``fields_only`` as parser and
``the_message`` as decoder (entries are the log's envelopes, read from ``raw_message``), stream
settings not deep-copied per read (``Stream``), fields decoded in one loop, and a batch's runs
awaited in turn, not gathered (``eventstore.handler_runs``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from faststream.middlewares import AckPolicy
from faststream.redis.annotations import RedisStreamMessage

from eventstore.acks import ACK_DELAY_S, AckBatches
from eventstore.broker import (
    Broker,
    Stream,
    broker_connections,
    fields_only,
    new_broker,
    the_message,
)
from eventstore.cancellation import raise_if_cancelled
from eventstore.consumer import Dispatcher, Run, RunnerOptions, Subscription, consumer_name
from eventstore.groups import ConsumerGroup, Delivery
from eventstore.handler_runs import InFlight, Slots, all_of, text
from eventstore.intake import Intake
from eventstore.keys import Layout
from eventstore.metrics import consumer_metrics
from eventstore.parking import Parked
from eventstore.per_message import PerMessageRuns, per_message_read
from eventstore.redis_client import AsyncRedis
from schemas.registry import MessageRegistry

log = logging.getLogger(__name__)
BLOCKED_READ_MARGIN_S = 0.25  # a read's way to Redis on a loaded machine (``_blocked_read_s``)
STOP_READING_S = 5.0  # the most a stop waits for a cancelled read loop to end (``_stop_reading``)


class Runner:
    """Consume a subscription on ``shards`` (default all) with FastStream until cancelled or
    ``stop()``; then finish in-flight work (FastStream's graceful stop) and hand waiting
    entries back."""

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
        url: str | None = None,
    ) -> None:
        consumer_metrics()  # registered at start: a scrape shows the families before any message
        self.options = options or RunnerOptions()
        self.group = ConsumerGroup(
            redis, layout, group=subscription.group, source=subscription.source,
            consumer=consumer or consumer_name(subscription.group),
        )
        self.dispatcher = Dispatcher(self.group, subscription, registry, self.options)
        self.shards = shards if shards is not None else list(range(layout.shards))
        self._in_flight = InFlight()
        self.broker = new_broker(redis, url, apply_types=False,
                                 max_connections=broker_connections(self.options, self.shards))
        self._slots = Slots(self.options.workers)
        self._acks = AckBatches(self.group, min(ACK_DELAY_S, self.options.claim_idle_ms / 10_000))
        self._parked = Parked(self.group, self._in_flight, self._handle)  # due later
        self.per_message_read = per_message_read(
            self.options.workers, self.options.batch, len(self.shards))
        self._per_message = PerMessageRuns(
            self._in_flight, self._slots, self._acks,
            lambda d: self._handle(d, checked=True, slot_taken=True), self.dispatcher.stopping,
            self.per_message_read,
        )
        self._intake = Intake(self.dispatcher.ignores)
        self.processed = 0
        self._busy = 0
        self._stopped = asyncio.Event()
        self.started = asyncio.Event()  # set once the subscribers read
        for shard in self.shards:
            for stream in self.group.streams(shard):
                self._subscribe(self.broker, shard, stream)

    # -- subscribers -------------------------------------------------------------------------

    def _subscribe(self, broker: Broker, shard: int, stream: str) -> None:
        """The reader and the reaper of ``stream`` (see the module docstring)."""
        o, group, consumer = self.options, self.group.group, self.group.consumer
        per_message = o.per_message and not self.dispatcher.subscription.in_order
        handled = ", ".join(sorted(self.dispatcher.handled))
        full = self.per_message_read if per_message else o.batch  # entries a read takes at most
        reader = Stream(stream, group=group, consumer=consumer, batch=True, max_records=full,
                        polling_interval=o.block_ms)
        about = f"Consumer group `{group}` on shard {shard}: handles {handled}."

        in_order = self.dispatcher.subscription.in_order  # held entries keep the rest pending
        linger = 0 if in_order else o.linger_ms / 1000
        batch_sizes = consumer_metrics().batches.labels(group)

        source = stream == self.group.streams(shard)[0]

        async def on_entries(body: Any) -> None:
            msg: RedisStreamMessage = body
            unread: list[bytes] | None = None if in_order else []
            deliveries = self._intake.deliveries(shard, stream, msg.raw_message, 0, source=source,
                                                unread=unread)
            if unread:  # not for this group: acked with the next batch, nothing else
                self._acks.add(stream, unread)
                self.processed += len(unread)
            read = len(deliveries) + len(unread or ())
            batch_sizes.observe(read)
            if per_message and deliveries:
                acked, due = self._triage(deliveries)
                self._acks.add(stream, acked)
                await self._per_message.start(stream, due)
            else:
                await self._settle(msg, deliveries, self._acks)
            if linger and read < full and not self._stopped.is_set():
                await asyncio.sleep(linger)  # FastStream reads again when this returns

        broker.subscriber(stream=reader, title=f"{stream}:{group}", description=about,
                          parser=fields_only, decoder=the_message,
                          ack_policy=AckPolicy.MANUAL)(on_entries)
        reaper = Stream(stream, group=group, consumer=consumer, min_idle_time=o.claim_idle_ms,
                         polling_interval=o.reaper_interval_ms)

        async def on_claimed(body: Any) -> None:
            msg: RedisStreamMessage = body
            [entry_id] = msg.raw_message["message_ids"]
            if self._in_flight.holds(stream, text(entry_id)):
                await msg.reject()  # ours, still being handled (a missed heartbeat)
                return
            crashed = max(await msg.get_delivery_count() - 1, 0)
            await self._settle(msg, self._intake.deliveries(shard, stream, msg.raw_message, crashed))

        # A crashed consumer may leave many slow entries: claimed ones side by side (not in order)
        claim_workers = 1 if self.dispatcher.subscription.in_order else o.workers
        broker.subscriber(stream=reaper, max_workers=claim_workers, include_in_schema=False,
                          parser=fields_only, decoder=the_message)(on_claimed)

    async def _settle(
        self, msg: RedisStreamMessage, deliveries: list[Delivery],
        acks: AckBatches | None = None,
    ) -> None:
        """Handle a FastStream message's entries. A reader's (``acks``) settled ones are acked
        with the next ack batch, the rest left pending; a reaper's message is acked by
        FastStream when all were settled, else the settled ones are acked here and the message
        is rejected (left pending)."""
        if not deliveries:
            return
        stream = deliveries[0].stream
        token = self._in_flight.hold(stream, [d.entry_id for d in deliveries])
        try:
            if self.dispatcher.subscription.in_order:
                acked = await self._in_turn(deliveries)
            else:
                acked = await self._together(deliveries)
        finally:
            self._in_flight.release(stream, token)
        if acks is not None:
            acks.add(stream, acked)
            return
        if len(acked) == len(deliveries):
            return
        if acked:
            await self.group.ack(deliveries[0].stream, *acked)
        await msg.reject()

    def _triage(self, deliveries: list[Delivery]) -> tuple[list[str], list[Delivery]]:
        """The entries settled at once (to ack) and those due now; the rest are parked."""
        acked, due = [], []
        for delivery in deliveries:
            wait = self.dispatcher.wait_s(delivery)
            if wait > 0:
                self._parked.park(delivery, wait)
            elif self.dispatcher.settled_at_once(delivery):
                acked.append(delivery.entry_id)  # not for this group: no task, no worker slot
                self.processed += 1
            else:
                due.append(delivery)
        return acked, due

    async def _together(self, deliveries: list[Delivery]) -> list[str]:
        acked, due = self._triage(deliveries)
        if len(due) == 1:  # one entry (a claim): no task of its own
            results = [await self._handle(due[0], checked=True)]
        else:
            results = await all_of([self._handle(d, checked=True) for d in due])
        return acked + [d.entry_id for d, ok in zip(due, results, strict=True) if ok]

    async def _in_turn(self, deliveries: list[Delivery]) -> list[str]:
        acked: list[str] = []
        batched, start = self.dispatcher.subscription.batch_handler is not None, 0
        while start < len(deliveries) and not self.dispatcher.held:
            run = self.dispatcher.run_from(deliveries, start) if batched else None
            chunk = run.deliveries if run and run.deliveries else deliveries[start:start + 1]
            start += len(chunk)
            if run and run.deliveries and await self._handle_run(run):
                acked += [d.entry_id for d in chunk]
                continue
            for delivery in chunk:  # one by one (also a run the batch handler failed)
                if self.dispatcher.held:
                    break
                if await self._handle(delivery):
                    acked.append(delivery.entry_id)
        return acked

    async def _handle_run(self, run: Run) -> bool:
        """True when the batch handler took ``run`` (FastStream may ack all of it)."""
        await self._slots.take()
        self._busy += 1
        try:
            if not await self.dispatcher.process_run(run):
                return False
            self.processed += len(run.deliveries)
            return True
        finally:
            self._busy -= 1
            self._slots.give()

    async def _handle(self, delivery: Delivery, *, checked: bool = False,
                      slot_taken: bool = False) -> bool:
        """True when ``delivery`` may be acked (handled, or moved to retry/DLQ); ``checked``:
        see ``Dispatcher.process``; ``slot_taken``: the caller took its worker slot."""
        slots = self._slots
        if not slot_taken and slots.free > 0:
            slots.free -= 1
        elif not slot_taken:
            await slots.wait()
        self._busy += 1
        try:
            moved_or_acked = await self.dispatcher.process(delivery, checked=checked)
            self.processed += 1
            return moved_or_acked or not self.dispatcher.held
        except Exception:
            # Redis trouble while retrying/dead-lettering: leave it pending; a claim retries.
            log.exception("could not settle %s", delivery.origin)
            return False
        finally:
            self._busy -= 1
            slots.give()

    async def _hand_back(self) -> None:
        """On stop, after the handlers finished, hand back what is still pending on this
        consumer and held by nobody here: entries of a read the stop cut short (Redis delivered
        them, the reply was lost), and any left pending after a failure to settle. The next
        consumer then reads them at once rather than claiming them after ``claim_idle_ms``.
        In order, nothing is moved: the shard's next consumer takes over what is pending first
        (``_take_over``), in order."""
        if self.dispatcher.subscription.in_order:
            return
        for shard in self.shards:
            try:
                for delivery in await self.group.left_with_me(shard):
                    if not self._in_flight.holds(delivery.stream, delivery.entry_id):
                        await self.group.hand_back(delivery)
            except Exception:
                log.exception("could not hand back what shard %s left; a claim will", shard)

    async def _heartbeat(self) -> None:
        every = max(self.options.claim_idle_ms / 5000, 0.05)  # a stall of 4/5 is survived
        while True:
            await asyncio.sleep(every)
            try:
                for stream, ids in self._in_flight.by_stream():
                    await self.group.touch(stream, ids)
            except Exception:
                log.exception("touching in-flight entries failed; retrying")

    # -- life cycle ----------------------------------------------------------------------------

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
            acked = await self._in_turn(fresh)
            for stream in {d.stream for d in fresh}:
                await self.group.ack(stream, *[d.entry_id for d in fresh
                                               if d.stream == stream and d.entry_id in acked])
            if self.dispatcher.held:
                await self.dispatcher.stopping.wait()
                return

    async def run(self) -> None:
        """Consume until cancelled or ``stop()``."""
        await self.group.ensure(self.shards, start=self.options.start)
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            if self.dispatcher.subscription.in_order:
                await asyncio.gather(*(self._take_over(shard) for shard in self.shards))
            await self.broker.start()
            raise_if_cancelled()  # a Redis call during start may have swallowed a cancellation
            self.started.set()
            await self._stopped.wait()
        finally:
            self._stopped.set()
            self.dispatcher.stopping.set()
            self._slots.open_gates()  # per-message readers waiting for free slots: stop now
            await asyncio.shield(self._shutdown(heartbeat))

    async def _shutdown(self, heartbeat: asyncio.Task[None]) -> None:
        stops = await asyncio.gather(*map(_stop_reading, self.broker.subscribers),
                                     return_exceptions=True)
        for failed in (s for s in stops if isinstance(s, Exception)):
            log.warning("a subscriber's stop failed: %r", failed)
        with contextlib.suppress(Exception):
            await self.broker.stop()  # closes its connections (its subscribers have stopped)
        reads_over = asyncio.get_running_loop().time() + self._blocked_read_s()
        await self._per_message.wait()  # and for the per-message runs they started
        await self._acks.close()
        await asyncio.sleep(max(0.0, reads_over - asyncio.get_running_loop().time()))
        await self._parked.hand_back()
        await self._hand_back()
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat

    def _blocked_read_s(self) -> float:
        """How long a read of ours may still be blocked in Redis after the broker stopped:
        FastStream cancels its readers without waiting for Redis, so a read sent before the stop
        stays blocked there up to ``block_ms``, taking what arrives meanwhile (its reply lost);
        entries handed back to the retry stream before then would wait for a claim."""
        if self.dispatcher.subscription.in_order:
            return 0.0
        return self.options.block_ms / 1000 + BLOCKED_READ_MARGIN_S

    def stop(self) -> None:
        self._stopped.set()


async def _stop_reading(subscriber: Any) -> None:
    """Stop a FastStream subscriber (it waits for its in-flight handlers) and wait until its
    read loop has ended. ``broker.stop`` cancels the loops without waiting and then closes the
    connections: a read the cancellation had not reached yet saw its connection close, and
    FastStream logged it as an ERROR ("Message fetch error ... Connection closed by server")
    at many stops of a worker. (A loop that fails during the stop and is restarted by
    FastStream's supervisor is not waited for: its stop is FastStream's, as before.)"""
    loops = [task for task in subscriber.tasks if not task.done()]
    await subscriber.stop()
    if loops:
        _, running = await asyncio.wait(loops, timeout=STOP_READING_S)
        if running:
            log.warning("%d read loop(s) still running %.0f s after their stop",
                        len(running), STOP_READING_S)
