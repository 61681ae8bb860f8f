"""``eco2_circuit_breaker_state``: each node's breaker as Prometheus reads it at scrape time
(the half-open state arrives by the clock alone, without a call)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from agents.chat.breaker_metrics import breaker_states
from agents.chat.errors import NodeFailed, SourceUnavailable
from agents.chat.policies import FailMode, ManualClock, NodeGuard, NodePolicy


async def failing() -> str:
    raise SourceUnavailable("503")


async def fine() -> str:
    return "ok"


def state(registry: CollectorRegistry, node: str) -> float | None:
    return registry.get_sample_value("eco2_circuit_breaker_state", {"name": node})


async def test_closed_open_half_open_and_closed_again() -> None:
    registry = CollectorRegistry()
    clock = ManualClock()
    policy = NodePolicy(1000, 0, 2, FailMode.FALLBACK, breaker_open_s=60)
    guard = NodeGuard({"weather": policy, "location": policy}, clock=clock,
                      states=breaker_states(registry))
    assert (state(registry, "weather"), state(registry, "location")) == (0, 0)
    for _ in range(2):
        with pytest.raises(NodeFailed):
            await guard.call("weather", failing)
    assert (state(registry, "weather"), state(registry, "location")) == (2, 0)
    clock.advance(60)
    assert state(registry, "weather") == 1
    assert await guard.call("weather", fine) == "ok"
    assert state(registry, "weather") == 0


async def test_the_worst_state_of_several_guards_is_reported() -> None:
    registry = CollectorRegistry()
    states = breaker_states(registry)
    policy = NodePolicy(1000, 0, 1, FailMode.OPEN)
    healthy = NodeGuard({"n": policy}, clock=ManualClock(), states=states)
    broken = NodeGuard({"n": policy}, clock=ManualClock(), states=states)
    with pytest.raises(NodeFailed):
        await broken.call("n", failing)
    assert healthy.breaker("n").state == "closed" and state(registry, "n") == 2


async def test_a_process_s_guard_is_declared_in_the_default_registry() -> None:
    guard = NodeGuard({"answer-probe": NodePolicy(1000, 0, 1, FailMode.CLOSE)})
    text = generate_latest(REGISTRY).decode()
    assert "# TYPE eco2_circuit_breaker_state gauge" in text
    assert 'eco2_circuit_breaker_state{name="answer-probe"} 0.0' in text
    del guard
