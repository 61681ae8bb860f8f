"""What the user-driven benches (``scan``, ``chat``) share around their client processes.

A client process runs its slice of the simulated users from the common start (``run_users``;
each user counts its requests with ``submit``) and sends back what they did (a ``Tally``) with
what the process itself cost (``ClientLoad``).
The bench runs those processes under a CPU meter and its own loop-lag sampler
(``run_measured``) and merges the tallies into one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

from eventstore.redis_client import AsyncRedis
from infra.bench.cpu import CLIENT, CpuMeter, LoopLag
from infra.bench.processes import ClientMain, Started, cpu_s, run_clients
from infra.bench.repeat import percentile


@dataclass
class Tally:
    """What simulated users did (picklable: a client process sends its own back to the bench).
    A bench adds its own lists of samples; ``add`` folds another tally in, whatever its fields."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    errors: int = 0  # submissions refused, dropped, or whose done never came
    error_kinds: dict[str, int] = field(default_factory=dict)  # why, e.g. "HTTP 503 …"

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1

    def add(self, other: Self) -> None:
        """Fold ``other`` in: counts add up, error kinds add up by kind, sample lists extend."""
        for name in (f.name for f in dataclasses.fields(self)):
            mine, theirs = getattr(self, name), getattr(other, name)
            if isinstance(mine, list):
                mine.extend(theirs)
            elif isinstance(mine, dict):
                for kind, n in theirs.items():
                    mine[kind] = mine.get(kind, 0) + n
            else:
                setattr(self, name, mine + theirs)

    @property
    def completion(self) -> float:
        """Percent of the submissions that completed."""
        return 100.0 * self.completed / self.submitted if self.submitted else 0.0


async def submit(tally: Tally, post: Awaitable[tuple[int, Any]]) -> Any | None:
    """One user's submission, counted: the reply when it was accepted (202); else None, once
    the refusal or the dropped connection is tallied and the user has paused a second."""
    tally.submitted += 1
    try:
        status, reply = await post
    except OSError as exc:
        status, reply = 0, f"{type(exc).__name__}: {exc}"
    if status == 202:
        return reply
    tally.error(f"HTTP {status} {str(reply)[:80]}" if status else f"connection: {reply}")
    await asyncio.sleep(1)
    return None


T = TypeVar("T", bound=Tally)
S = TypeVar("S")


@dataclass(frozen=True)
class ClientLoad:
    """What one client process cost from the common start to its last user."""

    cpu_s: float  # its CPU seconds
    lags: list[float]  # its event-loop lag samples


async def run_users(
    started: Started, users: Callable[[float], Iterable[Awaitable[None]]]
) -> ClientLoad:
    """In a client process: wait for the common start, then run together the users that
    ``users(began)`` makes (``began``: the start, monotonic), measuring the process."""
    lag = LoopLag()
    await started()
    cpu_began, began = cpu_s(), time.monotonic()
    lag.start()
    await asyncio.gather(*users(began))
    lag.stop()
    return ClientLoad(cpu_s() - cpu_began, lag.lags)


@dataclass
class ClientsRun(Generic[T]):
    """The client processes' run, from the common start to the last one's tally."""

    tally: T  # every process's users, merged
    duration_s: float
    cpu: CpuMeter  # CPU seconds per role, the client processes' own included
    lags: list[list[float]]  # the event-loop lags of the bench process, then of each client
    load_at_start: float  # the machine's 1-min load average


async def run_measured(
    main: ClientMain[S, tuple[T, ClientLoad]], parts: Sequence[S], *, redis: AsyncRedis,
    roles: Mapping[str, int], timeout_s: float,
) -> ClientsRun[T]:
    """Run ``main`` in one process per part (see ``run_clients``) while metering the CPU of
    ``roles`` (process name → pid), of Redis and of the clients, and this process's loop lag."""
    meter = CpuMeter(redis, roles, clients=[os.getpid()])
    lag = LoopLag()
    load_at_start, began = 0.0, 0.0

    async def on_start() -> None:
        nonlocal load_at_start, began
        load_at_start, began = os.getloadavg()[0], time.monotonic()
        lag.start()
        await meter.start()

    reports = await run_clients(main, parts, on_start=on_start, timeout_s=timeout_s)
    duration_s = time.monotonic() - began
    lag.stop()
    await meter.stop()
    meter.seconds[CLIENT] = meter.seconds.get(CLIENT, 0.0) + sum(
        load.cpu_s for _, load in reports)
    tally = type(reports[0][0])()
    for each, _ in reports:
        tally.add(each)
    return ClientsRun(tally, duration_s, meter, [lag.lags, *(load.lags for _, load in reports)],
                      load_at_start)


def worst_lag(lags: list[list[float]], p: float) -> float:
    """The worst process's event-loop lag percentile ``p`` (seconds)."""
    return max((percentile(samples, p) for samples in lags), default=float("nan"))
