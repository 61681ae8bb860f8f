"""Entries that must wait: transient failures on a time budget, and parked unknown types.

A handler that raises ``RetryLater`` (the character service is down, an LLM rate limit) is
not crashing: its entry is re-queued on the group's retry stream with a due time, on its own
budget of *time* — exponential back-off with jitter from ``initial_s`` up to ``max_s`` per
wait, for at most ``budget_s`` since the first such failure — and does not use up the
crash-redelivery budget (``max_deliveries``). Only an exhausted time budget dead-letters it.

An entry whose message type this release does not know (a newer release wrote it during a
rolling deploy) is parked the same way, without any budget: it waits on the retry stream,
marked ``_parked`` with the reason, until a consumer that knows the type handles it.

Fields carried by such retry entries (next to ``_attempts`` / ``_origin``):
``_due`` (epoch seconds before which nobody handles it), ``_since`` (first transient failure),
``_later`` (transient retries so far) and ``_parked`` (why it waits, for operators).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

from eventstore.groups import ConsumerGroup, Delivery
from schemas.registry import UnknownMessageType

log = logging.getLogger(__name__)

class RetryLater(Exception):
    """Raised by a handler when a dependency is unavailable: the entry is retried later on the
    time budget (``RunnerOptions.retry_budget``), not counted as a crash redelivery."""


DUE = "_due"
SINCE = "_since"
LATER = "_later"
PARKED = "_parked"


@dataclass(frozen=True)
class RetryBudget:
    """How long transient failures are retried, and how far apart."""

    budget_s: float = 600.0  # from the first RetryLater until the entry is dead-lettered
    initial_s: float = 0.25  # the first wait (before jitter)
    max_s: float = 60.0  # the longest single wait

    def delay(self, retries: int) -> float:
        """The wait before transient retry number ``retries + 1``: the capped exponential
        ceiling, half of it fixed and half jittered (so a fleet does not retry in step)."""
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(retries, 40))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def exhausted(self, since: float, now: float | None = None) -> bool:
        return (time.time() if now is None else now) - since >= self.budget_s


def wait_s(fields: Mapping[str, str], now: float | None = None) -> float:
    """Seconds until the entry is due (0 when it is due now or carries no due time)."""
    raw = fields.get(DUE)
    if not raw:
        return 0.0
    try:
        due = float(raw)
    except ValueError:
        return 0.0
    return max(0.0, due - (time.time() if now is None else now))


def since_of(fields: Mapping[str, str], default: float) -> float:
    try:
        return float(fields.get(SINCE) or default)
    except ValueError:
        return default


def retries_of(fields: Mapping[str, str]) -> int:
    raw = fields.get(LATER) or "0"
    return int(raw) if raw.isascii() and raw.isdigit() else 0


async def retry_later(
    group: ConsumerGroup,
    delivery: Delivery,
    exc: RetryLater,
    budget: RetryBudget,
    since: float,
    retries: int,
    in_order: bool,
) -> bool:
    """Settle a transient failure on the time budget: True to try again here (in-order, after
    the back-off), False when re-queued with a due time or dead-lettered."""
    error = f"{type(exc).__name__}: {exc}"
    if budget.exhausted(since):
        elapsed = time.time() - since
        error = f"{error} (still failing after {elapsed:.0f} s, budget {budget.budget_s:g} s)"
        log.error("dead-lettering %s: %s", delivery.origin, error)
        await group.dead_letter(delivery, error, attempts=delivery.attempts + retries + 1)
        return False
    delay = budget.delay(retries)
    log.info("%s: %s; retrying in %.1f s", delivery.origin, error, delay)
    if in_order:
        await asyncio.sleep(delay)
        return True
    marks = {
        DUE: repr(time.time() + delay), SINCE: repr(since), LATER: str(retries + 1),
        "_error": error[:2000],
    }
    await group.requeue(delivery, marks)
    return False


async def park_unknown(
    group: ConsumerGroup,
    delivery: Delivery,
    exc: UnknownMessageType,
    budget: RetryBudget,
    park_max_s: float,
    *,
    in_order: bool,
    stopping: asyncio.Event,
) -> bool:
    """Park an entry of a type this release does not know: never dead-lettered, never dropped;
    it waits (back-off up to ``park_max_s``) until a release that knows it. An in-order
    consumer waits in place (nothing may overtake it) until ``stopping``: the entry is then
    left pending, unacked, for the next consumer of the shard (e.g. the new release's)."""
    reason = f"waiting for a release that knows it: {exc}"
    retries = retries_of(delivery.fields)
    delay = min(park_max_s, budget.delay(retries))
    if retries == 0:
        log.warning("%s parked: %s", delivery.origin, reason)
    if in_order:
        await stopping.wait()
        return False
    await group.requeue(
        delivery, {DUE: repr(time.time() + delay), LATER: str(retries + 1), PARKED: reason}
    )
    return False
