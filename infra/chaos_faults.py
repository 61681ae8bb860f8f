"""The fault schedule of a chaos run and the injector that plays it against a ``ChaosSystem``.

A schedule is data: each :class:`Fault` says when (seconds after the load starts), what and for
how long. The injector starts each one at its time as its own task (a kill may land while the
character service is paused) and records what actually happened, with wall-clock windows, so
the checks can tell a 503 during an outage from one outside.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from enum import StrEnum

from infra.chaos_system import ChaosSystem


class Kind(StrEnum):
    KILL = "kill -9"  # SIGKILL a role; the supervisor restarts it
    PAUSE = "SIGSTOP"  # freeze a role for hold_s, then SIGCONT
    REDIS_RESTART = "redis restart"  # kill -9 Redis, start it again from its AOF
    POSTGRES_STOP = "postgres stop"  # fast shutdown for hold_s, then start again
    SSE_DROP = "sse drop"  # every open SSE connection is dropped and resumed by Last-Event-ID


# Faults that make a dependency unavailable: a 503 inside their window is the right answer.
OUTAGES = frozenset({Kind.REDIS_RESTART, Kind.POSTGRES_STOP})


@dataclass(frozen=True)
class Fault:
    at_s: float
    kind: Kind
    target: str = ""
    hold_s: float = 0.0

    @property
    def label(self) -> str:
        held = f" {self.hold_s:.0f}s" if self.hold_s else ""
        return f"{self.kind} {self.target}{held}".replace("  ", " ").strip()


@dataclass
class Injected:
    """What happened when a fault was played: its wall-clock window and the outcome."""

    fault: Fault
    started: float  # time.time()
    ended: float = 0.0
    ok: bool = False
    note: str = ""


@dataclass(frozen=True)
class Schedule:
    name: str
    load_s: float  # how long users keep submitting
    faults: tuple[Fault, ...] = field(default_factory=tuple)


def _kills(start: float, step: float) -> tuple[Fault, ...]:
    roles = ("scan-0", "reward", "chat", "snapshot", "projectors", "gateway")  # scan-1 goes on
    return tuple(Fault(start + i * step, Kind.KILL, role) for i, role in enumerate(roles))


FULL = Schedule("full", load_s=170.0, faults=(
    Fault(8, Kind.SSE_DROP),
    *_kills(12, 8),  # 12 … 52
    Fault(60, Kind.SSE_DROP),
    Fault(66, Kind.PAUSE, "characters", hold_s=30),
    Fault(85, Kind.SSE_DROP),  # while scans wait for their reward: many streams are open
    Fault(105, Kind.REDIS_RESTART),
    Fault(115, Kind.SSE_DROP),
    Fault(122, Kind.POSTGRES_STOP, hold_s=30),
    Fault(160, Kind.SSE_DROP),
))

# The pause outlasts the crash-redelivery budget (5 deliveries of a 2 s gRPC deadline, ~11 s)
# by long enough that a reward living on that budget alone is caught here too.
SHORT = Schedule("short", load_s=66.0, faults=(
    Fault(3, Kind.SSE_DROP),
    *_kills(5, 3),  # 5 … 20
    Fault(23, Kind.PAUSE, "characters", hold_s=20),
    Fault(35, Kind.SSE_DROP),  # while scans wait for their reward: many streams are open
    Fault(46, Kind.REDIS_RESTART),
    Fault(50, Kind.POSTGRES_STOP, hold_s=10),
    Fault(63, Kind.SSE_DROP),
))

SCHEDULES = {s.name: s for s in (FULL, SHORT)}


class SseDrops:
    """A generation counter SSE readers watch: when it moves, they drop at once and resume."""

    def __init__(self) -> None:
        self.generation = 0
        self.dropped = 0  # connections dropped
        self._moved = asyncio.Event()

    def drop_all(self) -> None:
        self.generation += 1
        self._moved.set()
        self._moved = asyncio.Event()

    async def after(self, generation: int) -> None:
        """Return once a drop happens after ``generation``."""
        while self.generation == generation:
            await self._moved.wait()


async def play(schedule: Schedule, system: ChaosSystem, drops: SseDrops) -> list[Injected]:
    """Play every fault of ``schedule`` at its time from now; returns them once all ended."""
    began = time.monotonic()

    async def one(fault: Fault) -> Injected:
        await asyncio.sleep(max(0.0, began + fault.at_s - time.monotonic()))
        record = Injected(fault, started=time.time())
        try:
            record.note = await _inject(fault, system, drops)
            record.ok = True
        except Exception as exc:  # a fault that could not be injected is reported, not fatal
            record.note = f"{type(exc).__name__}: {exc}"
        record.ended = time.time()
        return record

    return list(await asyncio.gather(*(one(f) for f in schedule.faults)))


async def _inject(fault: Fault, system: ChaosSystem, drops: SseDrops) -> str:
    if fault.kind is Kind.KILL:
        pid = await system.signal_role(fault.target, signal.SIGKILL)
        took = await system.wait_replaced(fault.target, pid)
        note = f"pid {pid} killed, restarted after {took:.1f}s"
        if fault.target == "gateway":
            note += f", serving again after {took + await system.wait_serving():.1f}s"
        return note
    if fault.kind is Kind.PAUSE:
        pid = await system.signal_role(fault.target, signal.SIGSTOP)
        try:
            await asyncio.sleep(fault.hold_s)
        finally:
            await system.signal_role(fault.target, signal.SIGCONT)
        return f"pid {pid} stopped {fault.hold_s:.0f}s"
    if fault.kind is Kind.REDIS_RESTART:
        began = time.monotonic()
        await system.crash_redis()
        return f"back after {time.monotonic() - began:.1f}s"
    if fault.kind is Kind.POSTGRES_STOP:
        await system.stop_postgres()
        try:
            await asyncio.sleep(fault.hold_s)
        finally:
            await system.start_postgres()
        return f"down {fault.hold_s:.0f}s"
    drops.drop_all()
    return f"generation {drops.generation}"
