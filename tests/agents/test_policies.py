"""Node policies: the DOMAIN table, timeouts, immediate retries, the circuit breaker."""

from __future__ import annotations

import asyncio
import time

import pytest

from agents.chat.errors import (
    NodeFailed,
    SourceBadData,
    SourceNotConfigured,
    SourceUnavailable,
)
from agents.chat.policies import (
    BREAKER_OPEN_S,
    POLICIES,
    CircuitBreaker,
    FailMode,
    ManualClock,
    NodeGuard,
    NodePolicy,
)


def test_policy_table_is_domain_md() -> None:
    expected = {
        "waste_rag": (1000, 1, 5, FailMode.FALLBACK),
        "bulk_waste": (10000, 2, 5, FailMode.FALLBACK),
        "location": (3000, 2, 5, FailMode.FALLBACK),
        "general": (30000, 2, 3, FailMode.CLOSE),
        "character": (3000, 1, 3, FailMode.OPEN),
        "collection_point": (10000, 2, 5, FailMode.FALLBACK),
        "weather": (5000, 1, 3, FailMode.OPEN),
        "web_search": (10000, 2, 5, FailMode.FALLBACK),
        "recyclable_price": (10000, 2, 5, FailMode.FALLBACK),
        "image_generation": (30000, 1, 3, FailMode.OPEN),
    }
    for node, (timeout_ms, retries, failures, mode) in expected.items():
        p = POLICIES[node]
        assert (p.timeout_ms, p.retries, p.breaker_failures, p.fail_mode) == (
            timeout_ms,
            retries,
            failures,
            mode,
        )
        assert p.breaker_open_s == 60 and p.retry_delay_s == 0


def test_breaker_opens_after_n_failures_and_closes_after_60s() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("x", failures=3, open_s=BREAKER_OPEN_S, clock=clock)
    for _ in range(2):
        breaker.record_failure()
        assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"
    clock.advance(59.9)
    assert breaker.state == "open"
    clock.advance(0.1)
    assert breaker.state == "half_open"
    breaker.check()  # a trial call is let through
    breaker.record_success()
    assert breaker.state == "closed"


def test_a_failed_trial_reopens_for_another_60s() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("x", failures=2, open_s=60, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.advance(60)
    assert breaker.state == "half_open"
    breaker.record_failure()  # one failure in half-open is enough
    assert breaker.state == "open"
    clock.advance(30)
    assert breaker.state == "open"


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker("x", failures=2, open_s=60, clock=ManualClock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == "closed"


def guard(clock: ManualClock, **policy: NodePolicy) -> NodeGuard:
    return NodeGuard(policy, clock=clock)


class Calls:
    def __init__(self, *outcomes: object) -> None:
        self.outcomes = list(outcomes)
        self.count = 0

    async def __call__(self) -> str:
        self.count += 1
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome == "hang":
            await asyncio.sleep(10)
        return str(outcome)


@pytest.mark.asyncio
async def test_transient_errors_are_retried_at_once() -> None:
    g = guard(ManualClock(), n=NodePolicy(1000, 2, 5, FailMode.FALLBACK))
    calls = Calls(SourceUnavailable("503"), SourceUnavailable("503"), "fine")
    assert await g.call("n", calls) == "fine"
    assert calls.count == 3
    assert NodePolicy(1000, 2, 5, FailMode.FALLBACK).retry_delay_s == 0  # no back-off, no jitter
    assert g.breaker("n").state == "closed"


@pytest.mark.asyncio
async def test_retries_run_out_and_count_once_for_the_breaker() -> None:
    clock = ManualClock()
    g = guard(clock, n=NodePolicy(1000, 1, 2, FailMode.FALLBACK))
    for n in range(2):
        calls = Calls(SourceUnavailable("503"), SourceUnavailable("503"))
        with pytest.raises(NodeFailed) as failed:
            await g.call("n", calls)
        assert (failed.value.reason, failed.value.attempts, calls.count) == ("error", 2, 2)
        assert g.breaker("n").state == ("closed" if n == 0 else "open")
    calls = Calls("ok")
    with pytest.raises(NodeFailed) as failed:
        await g.call("n", calls)
    assert failed.value.reason == "circuit_open" and calls.count == 0
    clock.advance(60)
    assert await g.call("n", calls) == "ok"


@pytest.mark.asyncio
async def test_each_attempt_has_the_timeout() -> None:
    g = guard(ManualClock(), n=NodePolicy(30, 1, 5, FailMode.OPEN))
    calls = Calls("hang", "hang")
    started = time.perf_counter()
    with pytest.raises(NodeFailed) as failed:
        await g.call("n", calls)
    assert failed.value.reason == "timeout" and calls.count == 2
    assert time.perf_counter() - started < 5  # two 30 ms timeouts, not a hang


@pytest.mark.asyncio
async def test_bad_data_is_not_retried_but_counts() -> None:
    g = guard(ManualClock(), n=NodePolicy(1000, 2, 1, FailMode.FALLBACK))
    calls = Calls(SourceBadData("html instead of json"))
    with pytest.raises(NodeFailed) as failed:
        await g.call("n", calls)
    assert (failed.value.reason, calls.count) == ("bad_data", 1)
    assert g.breaker("n").state == "open"


@pytest.mark.asyncio
async def test_not_configured_is_neither_retried_nor_counted() -> None:
    g = guard(ManualClock(), n=NodePolicy(1000, 2, 1, FailMode.OPEN))
    for _ in range(3):
        calls = Calls(SourceNotConfigured("offline"))
        with pytest.raises(NodeFailed) as failed:
            await g.call("n", calls)
        assert (failed.value.reason, calls.count) == ("not_configured", 1)
    assert g.breaker("n").state == "closed"


@pytest.mark.asyncio
async def test_programming_errors_are_not_retried() -> None:
    g = guard(ManualClock(), n=NodePolicy(1000, 2, 5, FailMode.FALLBACK))
    calls = Calls(KeyError("oops"))
    with pytest.raises(NodeFailed) as failed:
        await g.call("n", calls)
    assert (failed.value.reason, calls.count) == ("error", 1)
    assert "KeyError" in failed.value.detail


def test_invalid_policies_are_rejected() -> None:
    with pytest.raises(ValueError):
        NodePolicy(0, 1, 1, FailMode.OPEN)
    with pytest.raises(ValueError):
        NodePolicy(100, -1, 1, FailMode.OPEN)
