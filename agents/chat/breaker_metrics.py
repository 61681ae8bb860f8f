"""``eco2_circuit_breaker_state{name}``: each chat node's breaker, read at scrape time.

A breaker turns half-open by the clock alone (no call happens), so its state is not a gauge set
on transitions but read from every live ``NodeGuard`` of the process when Prometheus scrapes.
Several guards in one process (tests, evals) report their worst state per node.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from agents.chat.policies import NodeGuard

STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class BreakerStates(Collector):
    """The breakers of the tracked guards (held weakly: a dropped graph leaves the scrape)."""

    def __init__(self) -> None:
        self._guards: weakref.WeakSet[NodeGuard] = weakref.WeakSet()

    def track(self, guard: NodeGuard) -> None:
        self._guards.add(guard)

    def states(self) -> dict[str, int]:
        """Node name → 0 closed, 1 half-open, 2 open (the worst over the tracked guards)."""
        worst: dict[str, int] = {}
        for guard in list(self._guards):
            for node, breaker in guard.breakers().items():
                worst[node] = max(worst.get(node, 0), STATE_VALUES[breaker.state])
        return worst

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "eco2_circuit_breaker_state",
            "Circuit breaker of a chat node: 0 closed, 1 half-open, 2 open.",
            labels=["name"],
        )
        for node, value in sorted(self.states().items()):
            family.add_metric([node], value)
        yield family


_default: BreakerStates | None = None


def breaker_states(registry: CollectorRegistry | None = None) -> BreakerStates:
    """A collector registered in ``registry``; the default registry's is shared per process."""
    global _default
    if registry is not None:
        states = BreakerStates()
        registry.register(states)
        return states
    if _default is None:
        _default = BreakerStates()
        REGISTRY.register(_default)
    return _default
