"""Node policies (DOMAIN.md): per-attempt timeout, immediate retries, a circuit breaker per node
and the fail mode that decides what a failure does to the turn.

- **OPEN**: leave the node's context out and go on (the updates say it was skipped).
- **FALLBACK**: answer through the fallback chain (rag → web_search → general → a question).
- **CLOSE**: the turn fails with a readable message (``TurnAborted``).

Retries happen at once (``retry_delay_s`` 0, no jitter): a user is waiting and the breaker, not
back-off, protects a struggling source. Only transient errors are retried; a source that is not
configured is neither retried nor counted by the breaker (it would otherwise "open" a feature
that is simply off). Breakers live as long as the compiled graph (across turns) and read an
injectable clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from agents.chat.breaker_metrics import BreakerStates, breaker_states
from agents.chat.errors import (
    CircuitOpen,
    NodeFailed,
    SourceBadData,
    SourceNotConfigured,
    SourceUnavailable,
)
from agents.llm.ports import LLMBadOutput, LLMUnavailable
from characters import CharacterServiceUnavailable

R = TypeVar("R")

BREAKER_OPEN_S = 60.0


class FailMode(StrEnum):
    OPEN = "open"
    FALLBACK = "fallback"
    CLOSE = "close"


@dataclass(frozen=True)
class NodePolicy:
    timeout_ms: int
    retries: int  # extra attempts after the first
    breaker_failures: int  # consecutive failed calls that open the breaker
    fail_mode: FailMode
    breaker_open_s: float = BREAKER_OPEN_S
    retry_delay_s: float = 0.0

    def __post_init__(self) -> None:
        if self.timeout_ms <= 0 or self.retries < 0 or self.breaker_failures < 1:
            raise ValueError(f"invalid node policy {self}")


_O, _F, _C = FailMode.OPEN, FailMode.FALLBACK, FailMode.CLOSE

# DOMAIN.md's table; intent, vision and answer are ours (not in the table):
# - intent: the LLM classifier falls back to the local one;
# - vision: a chat image that cannot be read is left out, the text still gets an answer;
# - answer: without the final text there is no turn.
POLICIES: Mapping[str, NodePolicy] = {
    "waste_rag": NodePolicy(1000, 1, 5, _F),
    "bulk_waste": NodePolicy(10000, 2, 5, _F),
    "location": NodePolicy(3000, 2, 5, _F),
    "general": NodePolicy(30000, 2, 3, _C),
    "character": NodePolicy(3000, 1, 3, _O),
    "collection_point": NodePolicy(10000, 2, 5, _F),
    "weather": NodePolicy(5000, 1, 3, _O),
    "web_search": NodePolicy(10000, 2, 5, _F),
    "recyclable_price": NodePolicy(10000, 2, 5, _F),
    "image_generation": NodePolicy(30000, 1, 3, _O),
    "intent": NodePolicy(10000, 1, 5, _F),
    "vision": NodePolicy(15000, 1, 5, _O),
    "answer": NodePolicy(30000, 1, 5, _C),
}

# Exceptions worth another attempt at once.
RETRY_ON: tuple[type[BaseException], ...] = (
    TimeoutError,
    SourceUnavailable,
    LLMUnavailable,
    CharacterServiceUnavailable,
)


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (only differences matter)."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CircuitBreaker:
    """Closed → open after ``failures`` consecutive failed calls → after ``open_s`` half-open
    (calls go through; the first success closes it, a failure opens it again)."""

    def __init__(self, node: str, failures: int, open_s: float, clock: Clock) -> None:
        self.node = node
        self._threshold = failures
        self._open_s = open_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> str:
        """``closed`` | ``open`` | ``half_open``."""
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() - self._opened_at < self._open_s:
            return "open"
        return "half_open"

    def check(self) -> None:
        """Raise ``CircuitOpen`` while the breaker is open."""
        if self.state == "open":
            assert self._opened_at is not None
            remaining = self._open_s - (self._clock.monotonic() - self._opened_at)
            raise CircuitOpen(self.node, remaining)

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self.state == "half_open" or self._failures >= self._threshold:
            self._opened_at = self._clock.monotonic()


class NodeGuard:
    """Runs node calls under their policies; holds one breaker per node."""

    def __init__(
        self,
        policies: Mapping[str, NodePolicy] = POLICIES,
        *,
        clock: Clock | None = None,
        retry_on: tuple[type[BaseException], ...] = RETRY_ON,
        states: BreakerStates | None = None,
    ) -> None:
        """``states``: where the breakers are reported (the process's default registry's
        ``eco2_circuit_breaker_state`` unless given)."""
        self.policies = dict(policies)
        self._clock = clock or SystemClock()
        self._retry_on = retry_on
        self._breakers = {
            node: CircuitBreaker(node, p.breaker_failures, p.breaker_open_s, self._clock)
            for node, p in self.policies.items()
        }
        (states or breaker_states()).track(self)

    def policy(self, node: str) -> NodePolicy:
        return self.policies[node]

    def breaker(self, node: str) -> CircuitBreaker:
        return self._breakers[node]

    def breakers(self) -> Mapping[str, CircuitBreaker]:
        return self._breakers

    async def call(self, node: str, fn: Callable[[], Awaitable[R]]) -> R:
        """``fn()`` under ``node``'s policy; raises ``NodeFailed`` when it failed for good."""
        policy = self.policies[node]
        breaker = self._breakers[node]
        try:
            breaker.check()
        except CircuitOpen as exc:
            raise NodeFailed(node, "circuit_open", str(exc), attempts=0) from exc
        attempts = 0
        while True:
            attempts += 1
            try:
                async with asyncio.timeout(policy.timeout_ms / 1000):
                    value = await fn()
            except SourceNotConfigured as exc:
                raise NodeFailed(node, "not_configured", str(exc), attempts=attempts) from exc
            except Exception as exc:
                if isinstance(exc, self._retry_on) and attempts <= policy.retries:
                    if policy.retry_delay_s:
                        await asyncio.sleep(policy.retry_delay_s)
                    continue
                breaker.record_failure()
                raise NodeFailed(node, _reason(exc), _describe(exc), attempts=attempts) from exc
            breaker.record_success()
            return value


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, SourceBadData | LLMBadOutput):
        return "bad_data"
    return "error"


def _describe(exc: Exception) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
