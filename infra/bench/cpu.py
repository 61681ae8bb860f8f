"""CPU seconds per role over a bench run, and the load generator's own saturation.

The benches share two cores with the system they drive, so a figure only means something next
to where the CPU went: each stack child (gateway, workers, projector) from ``/proc/<pid>/stat``,
Redis from its own ``INFO cpu`` (the whole server: a shared ``REDIS_URL`` counts its other
clients too), and the bench's client processes (their own ``/proc`` figures). The event-loop lag
of each client says whether the generator kept up: a loop late by hundreds of milliseconds
delays every timestamp it takes, so the latencies then measure the generator, not the product.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eventstore.redis_client import AsyncRedis
from infra.supervisor import role_of

_TICKS = os.sysconf("SC_CLK_TCK")
CLIENT = "bench clients"
REDIS = "redis"


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (every thread); 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            after_name = stat.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(after_name[11]) + int(after_name[12])) / _TICKS  # fields 14/15: utime, stime


async def redis_cpu_s(redis: AsyncRedis) -> float:
    info: Any = await redis.info("cpu")
    if isinstance(info, dict) and "used_cpu_sys" not in info:  # a cluster client: one per node
        return sum(float(node["used_cpu_sys"]) + float(node["used_cpu_user"])
                   for node in info.values() if isinstance(node, dict))
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


@dataclass
class CpuMeter:
    """CPU seconds per role between ``start`` and ``stop``.

    ``roles`` maps a process name (``gateway``, ``scan-0`` …) to its pid; ``clients`` are the
    bench's own load-generating processes (this one included by the caller)."""

    redis: AsyncRedis
    roles: Mapping[str, int]
    clients: Iterable[int] = ()
    _began: dict[str, float] = field(default_factory=dict)
    _wall: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)  # role → CPU s over the run
    wall_s: float = 0.0

    def _sample_processes(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, pid in self.roles.items():
            role = role_of(name)
            out[role] = out.get(role, 0.0) + process_cpu_s(pid)
        out[CLIENT] = sum(process_cpu_s(pid) for pid in set(self.clients))
        return out

    async def start(self) -> None:
        self._began = self._sample_processes()
        self._began[REDIS] = await redis_cpu_s(self.redis)
        self._wall = time.monotonic()

    async def stop(self) -> dict[str, float]:
        ended = self._sample_processes()
        ended[REDIS] = await redis_cpu_s(self.redis)
        self.wall_s = time.monotonic() - self._wall
        self.seconds = {role: max(0.0, ended[role] - self._began.get(role, 0.0))
                        for role in ended}
        return self.seconds

    def report(self, units: int, unit: str) -> str:
        """One line: CPU seconds per role, its share of one core, and ms per ``unit``."""
        total = sum(self.seconds.values())
        parts = [
            f"{role} {s:.1f}s ({100 * s / self.wall_s:.0f}%, {1000 * s / max(units, 1):.2f}ms)"
            for role, s in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        ]
        return (f"CPU over {self.wall_s:.0f}s (s, % of one core, ms per {unit}): "
                + ", ".join(parts)
                + f"; total {total:.1f}s = {total / self.wall_s:.2f} cores, "
                f"{1000 * total / max(units, 1):.2f}ms per {unit}")

    def figures(self, units: int, unit: str) -> dict[str, float]:
        """``CPU ms per <unit>, <role>`` for every role and the total (for the summary)."""
        out = {f"CPU ms per {unit}, {role}": 1000 * s / max(units, 1)
               for role, s in self.seconds.items()}
        out[f"CPU ms per {unit}, total"] = 1000 * sum(self.seconds.values()) / max(units, 1)
        return out


class LoopLag:
    """How late this process's event loop wakes up (sampled every ``every_s``): the load
    generator's own saturation. p95 above ~50 ms means the client, not the system, sets the
    pace of what it measures."""

    def __init__(self, every_s: float = 0.1) -> None:
        self.every_s = every_s
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self.every_s)
            self.lags.append(max(0.0, time.monotonic() - before - self.every_s))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
