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

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

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
