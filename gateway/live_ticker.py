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
from eventstore.redis_client import AsyncRedis
from gateway.live_subscription import Subscription

log = logging.getLogger(__name__)

TICK_S = 0.1  # the ticker's period: a wait ends at most this much late

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
            for sub in due:
                try:
                    sub.expire(now, versions.get(sub.job_id))
                except Exception:  # one client's failure must not stop every client's timer
                    log.exception("live: timing out a wait of job %s failed", sub.job_id)


async def log_versions(reader: AsyncRedis, layout: Layout, job_ids: set[str]) -> dict[str, int]:
    """The jobs' versions in Redis, in one pipelined round trip (a job whose stream is not in
    Redis, or a failed read, is left out: its client reads it itself)."""
    jobs = list(job_ids)
    try:
        async with reader.pipeline(transaction=False) as pipe:
            for job in jobs:
                pipe.xrevrange(layout.keys_for(job).aggregate(job), count=1)
            replies = await pipe.execute(raise_on_error=False)
    except Exception as exc:
        log.warning("live: could not read the versions of %d jobs: %r", len(jobs), exc)
        return {}
    out: dict[str, int] = {}
    for job, reply in zip(jobs, replies, strict=True):
        if isinstance(reply, list) and reply:
            out[job] = int(str(reply[0][0]).split("-", 1)[0])
    return out
