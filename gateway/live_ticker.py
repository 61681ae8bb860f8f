"""The one timer of every waiting SSE client: a wheel of ``TICK_S`` slots.

10,000 streams, each re-arming a timer of its own on every message, cost more than the
messages: instead a wait is put in the slot its deadline falls in, and one task looks, every
tick, only at the waits of the slots that have passed. The waits it times out get their jobs'
versions in the log from one pipelined read, so a client re-reads its job only when behind.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.redis_client import AsyncRedis
from gateway.live_subscription import Subscription

log = logging.getLogger(__name__)

TICK_S = 0.1  # the ticker's period: a wait ends at most this much late
# Waits timed out per turn of the event loop. Each wakes a stream that writes a keepalive
# (≈ 0.1 ms): at 10,000 streams a tick times out ~70 of them, and woken all at once they made a
# live message that arrived meanwhile wait for the whole burst.
WAKE_BATCH = 16

ReadVersions = Callable[[set[str]], Awaitable[dict[str, int]]]


class Ticker:
    """Times out the waits that passed their deadline (``Subscription.next``)."""

    def __init__(self, read_versions: ReadVersions, tick_s: float = TICK_S) -> None:
        self.read_versions = read_versions
        self.tick_s = tick_s
        # the waits by the tick their deadline falls in: a tick looks only at its own
        self._wheel: dict[int, list[Subscription]] = {}

    def arm(self, sub: Subscription) -> None:
        """Have the ticker look at ``sub`` once its deadline has passed."""
        self._wheel.setdefault(math.ceil(sub.deadline / self.tick_s), []).append(sub)

    async def run(self) -> None:
        """Tick until cancelled. A wait ended by a message stays in its slot until the slot's
        tick, which finds it no longer due."""
        loop = asyncio.get_running_loop()
        last = math.floor(loop.time() / self.tick_s)
        while True:
            await asyncio.sleep(self.tick_s)
            now = loop.time()
            current = math.floor(now / self.tick_s)
            due: list[Subscription] = []
            for slot in range(last + 1, current + 1):
                due.extend(sub for sub in self._wheel.pop(slot, ()) if now >= sub.deadline)
            last = current
            if not due:
                continue
            versions = await self.read_versions({sub.job_id for sub in due})
            for n, sub in enumerate(due):
                if n and n % WAKE_BATCH == 0:
                    await asyncio.sleep(0)  # the woken streams write; a live message can pass
                try:
                    sub.expire(now, versions.get(sub.job_id))
                except Exception:  # one client's failure must not stop every client's timer
                    log.exception("live: timing out a wait of job %s failed", sub.job_id)


class JobVersions:
    """The jobs' versions in the log, read for every job timed out in a tick at once.

    One call per shard (``LogReader.hot_versions``) returns only the entry ids: a pipeline of
    an XREVRANGE per job packed a command and parsed a whole event per keepalive, ~17 % of the
    gateway's CPU at 10,000 streams, in bursts that held the event loop at every tick."""

    def __init__(self, reader: AsyncRedis, layout: Layout) -> None:
        self.layout = layout
        self._log = LogReader(reader, layout)

    async def read(self, job_ids: set[str]) -> dict[str, int]:
        """Each job's version (a job whose stream is not in Redis, or a failed read, is left
        out: its client reads it itself)."""
        by_shard: dict[int, list[str]] = {}
        for job in job_ids:
            by_shard.setdefault(self.layout.shard_of(job), []).append(job)
        calls = [self._versions(shard, jobs) for shard, jobs in by_shard.items()]
        out: dict[str, int] = {}
        for jobs, ids in zip(by_shard.values(), await asyncio.gather(*calls), strict=True):
            for job, version in zip(jobs, ids, strict=True):
                if version is not None:
                    out[job] = version
        return out

    async def _versions(self, shard: int, jobs: list[str]) -> list[int | None]:
        try:
            return await self._log.hot_versions(shard, jobs)
        except Exception as exc:
            log.warning("live: could not read the versions of %d jobs: %r", len(jobs), exc)
            return [None] * len(jobs)
