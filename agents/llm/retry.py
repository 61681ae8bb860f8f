"""Bounded exponential back-off for the remote LLM adapters (OpenAI, Gemini).

Our own loop rather than the SDKs' (both are built with their retries off): one policy for both
providers, no jitter so tests are deterministic, a configurable base delay so they are fast, and
streams are only retried while nothing has reached the caller (a retry after the first delta
would repeat text).

Adapters translate SDK errors first: worth another attempt (429, 408/409, 5xx, timeouts,
connection failures) → ``Retryable``; anything else (400, 401, 403, 404, bad output) is raised
as the final ``LLMUnavailable`` / ``LLMBadOutput`` without a retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import TypeVar

from agents.llm.ports import LLMUnavailable

R = TypeVar("R")

# Statuses a provider uses for "not now, try again": timeouts, conflicts, rate limits, overload.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status from a provider is worth another attempt."""
    return status in RETRYABLE_STATUSES or status >= 500


class Retryable(LLMUnavailable):
    """A failure worth another attempt; ``retry_after_s`` is the server's hint, if it gave one."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` attempts after the first, waiting ``base_delay_s * 2**n`` (capped) between."""

    retries: int = 2
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, retry: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based); honours a server hint but
        never waits longer than ``max_delay_s``."""
        backoff = self.base_delay_s * (2.0**retry)
        if retry_after_s is not None:
            backoff = max(backoff, retry_after_s)
        return min(self.max_delay_s, backoff)


async def call_with_retries(
    attempt: Callable[[], Awaitable[R]], policy: RetryPolicy, *, what: str
) -> R:
    """Run ``attempt`` until it succeeds, retrying ``Retryable`` failures per ``policy``.

    Gives up with ``LLMUnavailable`` (chained to the last failure) after ``retries + 1``
    attempts; any other error propagates at once.
    """
    for n in range(policy.retries + 1):
        try:
            return await attempt()
        except Retryable as exc:
            if n == policy.retries:
                raise LLMUnavailable(f"{what} failed after {n + 1} attempts: {exc}") from exc
            await asyncio.sleep(policy.delay(n, exc.retry_after_s))
    raise AssertionError("unreachable")  # the loop returns or raises


async def stream_with_retries(
    open_stream: Callable[[], AsyncGenerator[str, None]], policy: RetryPolicy, *, what: str
) -> AsyncIterator[str]:
    """Yield the deltas of ``open_stream()``, starting it again after a ``Retryable`` failure
    only while no delta has been yielded yet; a failure after that ends the stream with
    ``LLMUnavailable``."""
    for n in range(policy.retries + 1):
        started = False
        try:
            async with aclosing(open_stream()) as deltas:
                async for delta in deltas:
                    started = True
                    yield delta
            return
        except Retryable as exc:
            if started:
                raise LLMUnavailable(f"{what} broke off mid-stream: {exc}") from exc
            if n == policy.retries:
                raise LLMUnavailable(f"{what} failed after {n + 1} attempts: {exc}") from exc
            await asyncio.sleep(policy.delay(n, exc.retry_after_s))
