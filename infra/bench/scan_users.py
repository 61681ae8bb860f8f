"""The simulated users of ``eco2 bench scan``: submit, wait for the job's ``done`` on the log,
repeat. ``scan_client`` runs one slice of them in a client process of its own (see
``infra.bench.processes``), each process with its own connections and its own log tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.redis_client import AsyncRedis, open_redis
from gateway.scan_api import job_id_for
from infra.bench.clients import ClientLoad, Tally, run_users, submit
from infra.bench.http import UserConnection
from infra.bench.processes import Started
from schemas import registry
from schemas.scan import ScanCompleted, ScanFailed

PNG = b"\x89PNG\r\n\x1a\n" + bytes(120)  # passes the upload's content sniffing
# After a short read the watcher waits this long before reading again: one XREAD then brings
# the dones of many jobs, not of one or two (each client process tails every shard). A done is
# seen at most this much later, against end-to-end latencies of seconds.
WATCH_LINGER_S = 0.01
WATCH_BATCH = 2000


class DoneWatcher:
    """Tails the shard logs of ``shards`` (all by default) from their current heads and records
    each job's ``done``."""

    def __init__(
        self, redis: AsyncRedis, layout: Layout, shards: Sequence[int] | None = None
    ) -> None:
        self.redis = redis
        self.layout = layout
        self.shards = range(layout.shards) if shards is None else shards
        self.done: dict[str, tuple[str, float]] = {}  # job id → (status, monotonic time)
        self._waiters: dict[str, asyncio.Future[tuple[str, float]]] = {}
        self._names = {
            registry.wire_name(ScanCompleted)[0]: "completed",
            registry.wire_name(ScanFailed)[0]: "failed",
        }

    async def run(self) -> None:
        log = LogReader(self.redis, self.layout)
        heads = {shard: await log.head(shard) for shard in self.shards}
        follow = log.follow(heads, batch=WATCH_BATCH, block_ms=500)
        async with contextlib.aclosing(follow) as tail:
            async for found in tail:
                now = time.monotonic()
                for batch in found:
                    for _, fields in batch.entries:
                        status = self._names.get(fields.get("type", ""))
                        if status is not None:
                            self._finish(fields["agg"], status, now)
                if all(len(batch.entries) < WATCH_BATCH for batch in found):
                    await asyncio.sleep(WATCH_LINGER_S)

    def _finish(self, job_id: str, status: str, at: float) -> None:
        self.done.setdefault(job_id, (status, at))
        waiter = self._waiters.pop(job_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(self.done[job_id])

    async def wait(self, job_id: str) -> tuple[str, float]:
        """(status, monotonic time) of the job's ``done``, waiting for it if need be."""
        if job_id in self.done:
            return self.done[job_id]
        waiter = self._waiters.setdefault(job_id, asyncio.get_running_loop().create_future())
        return await waiter


async def upload_photo(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    """Upload one photo as the user of ``headers`` the way the app does; returns its cdn_url."""
    issued = (await client.post(
        "/api/v1/images/scan", json={"filename": "photo.png", "content_type": "image/png"},
        headers=headers,
    )).raise_for_status().json()
    (await client.put(issued["upload_url"], content=PNG, headers={"Content-Type": "image/png"})
     ).raise_for_status()
    return str(issued["cdn_url"])


async def submit_scan(
    conn: UserConnection, image_url: str, hint: str, key: str | None = None
) -> tuple[int, Any]:
    """``POST /api/v1/scan``, retried on a dropped connection under one idempotency key."""
    return await conn.post_once(
        "/api/v1/scan", {"image_url": image_url, "user_input": hint}, key=key
    )


def key_on_shards(user_id: str, layout: Layout, shards: Collection[int]) -> str:
    """A fresh idempotency key whose job (the gateway derives its id from the user and the key)
    lands on one of ``shards``: a client process then tails only those shard logs, not every
    event of every shard (which cost the bench more CPU than the reward worker's reads)."""
    while True:
        key = uuid.uuid4().hex
        if layout.shard_of(job_id_for(user_id, key)) in shards:
            return key


@dataclass
class ScanTally(Tally):
    """What scanning users did: the counts of every bench, and each completed scan's time."""

    latencies: list[float] = field(default_factory=list)  # submit → done observed
    submits: list[float] = field(default_factory=list)  # the POST's round trip (accepted ones)


async def user_loop(
    conn: UserConnection, watcher: DoneWatcher, result: ScanTally, user: ScanUser, *,
    deadline: float, done_timeout: float,
) -> None:
    """One simulated user: scan its photo, wait for ``done``, repeat until ``deadline``."""
    await asyncio.sleep(user.start_delay)
    while time.monotonic() < deadline:
        started = time.monotonic()
        key = key_on_shards(user.user_id, watcher.layout, watcher.shards)
        reply = await submit(result, submit_scan(conn, user.image_url, user.hint, key))
        if reply is None:
            continue
        result.submits.append(time.monotonic() - started)
        try:
            async with asyncio.timeout(done_timeout):
                status, at = await watcher.wait(reply["job_id"])
        except TimeoutError:
            result.error(f"no done within {done_timeout:.0f} s")
            continue
        if status == "completed":
            result.completed += 1
            result.latencies.append(at - started)
        else:
            result.failed += 1


@asynccontextmanager
async def watched_log(
    redis: AsyncRedis, layout: Layout, shards: Sequence[int] | None = None
) -> AsyncIterator[DoneWatcher]:
    """A ``DoneWatcher`` tailing the shard logs of ``layout`` (``shards`` of them) while the
    block runs."""
    watcher = DoneWatcher(redis, layout, shards)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.1)  # the watcher has read the heads before the first submission
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@dataclass(frozen=True)
class ScanUser:
    user_id: str
    headers: dict[str, str]
    image_url: str
    hint: str
    start_delay: float


@dataclass(frozen=True)
class ScanPart:
    """One client process's users and where to find the stack."""

    base_url: str
    redis_url: str
    layout: Layout
    users: list[ScanUser]
    duration_s: float
    done_timeout: float
    shards: tuple[int, ...]  # the shards its users' jobs land on, whose logs it tails


async def scan_client(part: ScanPart, started: Started) -> tuple[ScanTally, ClientLoad]:
    """Run ``part``'s users from the common start until ``duration_s`` has passed."""
    redis = await open_redis(part.redis_url, decode_responses=True)
    tally = ScanTally()
    try:
        async with watched_log(redis, part.layout, part.shards) as watcher:
            conns = [UserConnection(part.base_url, user.headers) for user in part.users]
            load = await run_users(started, lambda began: (
                user_loop(conn, watcher, tally, user, deadline=began + part.duration_s,
                          done_timeout=part.done_timeout)
                for conn, user in zip(conns, part.users, strict=True)
            ))
            for conn in conns:
                conn.close()
    finally:
        await redis.aclose()
    return tally, load
