"""What happens to one delivered entry of a consumer group: the settle logic the handler
runtime (``eventstore.runtime``, FastStream subscribers) applies to every entry.

At-least-once delivery: a failing entry goes to the group's retry stream until
``max_deliveries`` attempts, then to the DLQ — it never blocks its shard. A subscription
``in_order`` (the snapshot projector: its live messages must leave in version order) retries a
failed attempt in place (a later entry must not overtake it) until ``max_deliveries``, then
dead-letters it and the shard moves on. Order holds for one consumer per shard: split shards
between processes (``shards=``) rather than running two consumers of the group on one shard.
Given a ``batch_handler`` it takes a run of plain entries in one call (``Dispatcher.run_from``);
a run that fails is handled again entry by entry, with the guarantees above.

``RetryLater`` (a dependency is down) is retried on its own time budget and an unknown message
type is parked until a release knows it, both on the retry stream with a due time (see
``eventstore.later``). In-order subscriptions wait in place. Entries of classes the group does
not handle are acked without decoding. Each handler run is a span continuing the message's
trace (``eventstore.tracing``) and is measured (``eventstore.metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from opentelemetry.trace import Link

from eventstore import tracing
from eventstore.groups import ConsumerGroup, Delivery, Source
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
from eventstore.tracing import continued
from schemas.envelope import Envelope, MalformedEntry
from schemas.registry import Message, MessageRegistry, RegistryError, UnknownMessageType

log = logging.getLogger(__name__)

Handler = Callable[[Envelope, Message], Awaitable[None]]
BatchHandler = Callable[[Sequence[tuple[Envelope, Message]]], Awaitable[None]]


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
    # In order only: a run of consecutive entries that need nothing special (due now, within
    # their delivery budget, decodable, of a known class) goes to this in ONE call, in log
    # order. A run it fails is handled again entry by entry through ``handlers`` (retried in
    # place, dead-lettered as usual), so both must be idempotent and agree.
    batch_handler: BatchHandler | None = None


@dataclass(frozen=True)
class Run:
    """Consecutive entries of an in-order batch, settled together by the batch handler."""

    deliveries: list[Delivery]  # all acked when the run succeeds
    events: list[tuple[Envelope, Message]]  # those of a class the group handles, in order


@dataclass(frozen=True)
class RunnerOptions:
    workers: int = 64  # messages handled concurrently per process
    batch: int = 100  # entries read per XREADGROUP (per-message: at most, see per_message.py)
    # Each entry runs on its own, `workers` at a time (slow I/O); a reader reads no more than
    # its share of the free slots (``eventstore.per_message``).
    per_message: bool = False
    block_ms: int = 1000
    # A reader that got fewer entries than a read takes (``batch``; per-message: its share of
    # the slots) waits this long before it reads again, so a busy stream is read in fuller
    # batches (one XREADGROUP and one XACK for several entries) for up to this much latency.
    # Not for in-order readers.
    linger_ms: int = 0
    max_deliveries: int = 5
    claim_idle_ms: int = 30_000
    claim_interval_s: float = 1.0  # a reaper's pause between sweeps (at least claim_idle_ms / 10)
    retry_backoff_s: float = 0.05  # doubled per attempt, capped at 2 s
    retry_budget: RetryBudget = field(default_factory=RetryBudget)  # RetryLater's time budget
    park_max_s: float = 60.0  # longest wait before a parked unknown type is looked at again
    start: str = "0"  # where a new group starts: "0" = the backlog, "$" = new entries only

    @property
    def reaper_interval_ms(self) -> int:
        """How long a reaper sleeps once it has been through the group's pending entries:
        ``claim_interval_s``, but at least a tenth of ``claim_idle_ms``. FastStream's reaper
        asks XAUTOCLAIM for one entry at a time, and each call looks at ten pending entries, so
        a sweep is a call per ten entries in flight (hundreds with thousands of slow scans held
        by live consumers). No entry can be claimed before it idled ``claim_idle_ms``: sweeping
        more often than a tenth of that only re-reads the same live entries, and a dead
        consumer's entry is still taken within 1.1 x ``claim_idle_ms``."""
        return max(1, int(self.claim_interval_s * 1000), self.claim_idle_ms // 10)


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
        return name is not None and self.ignores(name)

    def ignores(self, name: str) -> bool:
        """Entries of type ``name`` are acked unread: a known class this group does not handle."""
        return name not in self.handled and self.registry.knows(name)

    def settled_at_once(self, delivery: Delivery) -> bool:
        """True when ``process`` would only ack ``delivery`` (due now, within its delivery
        budget, of a class this group does not handle): the caller may ack it without
        running ``process`` in a task of its own."""
        return delivery.attempts < self.options.max_deliveries and self._ignored(delivery)

    def wait_s(self, delivery: Delivery) -> float:
        """Seconds before ``delivery`` is due (a transient retry or a parked entry)."""
        return wait_s(delivery.fields)

    def run_from(self, deliveries: Sequence[Delivery], start: int) -> Run:
        """The longest run of ``deliveries[start:]`` the batch handler may take in one call
        (empty when the first entry must go through ``process``: due later, out of delivery
        budget, malformed or of an unknown type)."""
        taken: list[Delivery] = []
        events: list[tuple[Envelope, Message]] = []
        handlers = self.subscription.handlers
        for delivery in deliveries[start:]:
            if delivery.attempts >= self.options.max_deliveries or self.wait_s(delivery) > 0:
                break
            if not self._ignored(delivery):
                try:
                    envelope, message = decode(delivery, self.registry)
                except (MalformedEntry, RegistryError):
                    break
                if type(message) in handlers:
                    events.append((envelope, message))
            taken.append(delivery)
        return Run(taken, events)

    async def process_run(self, run: Run) -> bool:
        """Handle ``run``'s events with one call of the batch handler. True: ack the whole
        run; False: the call failed and nothing is settled (the caller goes entry by entry)."""
        handler = self.subscription.batch_handler
        if not run.events:
            return True
        if handler is None:
            raise ValueError(f"group {self.group.group} has no batch handler")
        try:
            with self._handling_run(run.events):
                await handler(run.events)
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("a run of %d entries failed (%s: %s); handling them one by one",
                        len(run.deliveries), type(exc).__name__, exc)
            return False

    async def process(self, delivery: Delivery, *, checked: bool = False) -> bool:
        """Handle ``delivery``. True: ack it now; False: it was already moved (retry/DLQ).
        ``checked``: the caller found it due and not ``settled_at_once`` (both checks are
        skipped here)."""
        if not checked:
            wait = self.wait_s(delivery)
            if wait > 0:  # not parked by the caller (in-order loop): wait here
                await asyncio.sleep(wait)
        if delivery.attempts >= self.options.max_deliveries:
            await self.group.dead_letter(
                delivery,
                f"gave up after {delivery.attempts} deliveries (consumer crashed or timed out)",
                attempts=delivery.attempts,
            )
            return False
        if not checked and self._ignored(delivery):
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

    @contextlib.contextmanager
    def _handling_run(self, events: Sequence[tuple[Envelope, Message]]) -> Iterator[None]:
        """One batch handler run: a span continuing its first message's trace (current while
        the handler runs), then, when spans are recorded, a span of the run in each message's
        own trace, linked to it, so every message's trace still shows this group handling it;
        and each entry's share of the run's duration in ``eco2_handler_duration_seconds``."""
        group, first = self.group.group, events[0][0]
        outcome, started, started_ns = "ok", time.perf_counter(), time.time_ns()
        attributes = {**_span_attributes(group, first), "eco2.batch.size": len(events)}
        try:
            with continued(first.metadata.trace, f"{group} batch", attributes=attributes) as run:
                yield
            if tracing.enabled():
                ended_ns, links = time.time_ns(), [Link(run.get_span_context())]
                for envelope, _ in events:
                    tracing.record_span(
                        envelope.metadata.trace, f"{group} {envelope.type}",
                        start_ns=started_ns, end_ns=ended_ns, links=links,
                        attributes={**_span_attributes(group, envelope),
                                    "eco2.batch.size": len(events)},
                    )
        except Exception:
            outcome = "error"
            raise
        finally:
            share = (time.perf_counter() - started) / len(events)
            handled = consumer_metrics().handled
            for envelope, _ in events:
                handled.labels(group, envelope.type, outcome).observe(share)

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
