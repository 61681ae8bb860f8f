"""What the rows of ``eco2 bench append`` (``infra.bench.append``, ``infra.bench.consume``) are
made of: the bench's own event and registry, a timed figure, and the throwaway namespace each
run writes in."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from eventstore.redis_client import AsyncRedis
from schemas.registry import Event, MessageRegistry

bench_registry = MessageRegistry()


@bench_registry.register("bench.tick")
class Tick(Event):
    n: int


@dataclass(frozen=True)
class Figure:
    name: str
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def timed(name: str, events: int, work: Callable[[], Awaitable[None]]) -> Figure:
    """The figure of ``events`` handled by ``work``, timed on the wall clock."""
    started = time.perf_counter()
    await work()
    return Figure(name, events, time.perf_counter() - started)


async def delete_namespace(redis: AsyncRedis, namespace: str) -> None:
    """Remove a run's keys (best effort: a failed clean-up does not fail the run)."""
    with contextlib.suppress(Exception):
        keys = [k async for k in redis.scan_iter(match=f"{{{namespace}:*", count=1000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i : i + 500])
