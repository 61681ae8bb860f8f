"""``eco2 bench scan``: N concurrent users scanning through the HTTP API, done read from the log.

Each simulated user uploads one photo, then repeats until the time is up: ``POST /api/v1/scan``
→ wait for its job's ``done`` (seen by tailing the shard logs) → again. The bench starts its own
stack (gateway, character service, scan and reward workers) on a fresh namespace with the
chosen latency profile, and reports completion, scans/min and end-to-end p50/p95 next to the
original system's figures and the ideal (the simulated model time of one scan).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
import typer

from agents.llm.latency import LatencyProfile
from eventstore.keys import Layout
from eventstore.reading import LogReader
from eventstore.redis_client import AsyncRedis
from infra.bench.http import UserConnection, http_clients
from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    WriteOption,
    check_repeat,
    print_summary,
    record,
    summarize,
)
from infra.bench.scan_record import NOTE, RATIOS, BenchResult, figures, report
from infra.cli_workers import run_async
from infra.settings import Settings
from infra.stacks import ScanStack
from schemas import registry
from schemas.scan import ScanCompleted, ScanFailed

bench_app = typer.Typer(help="Load benchmarks against a stack started for the run.")

PNG = b"\x89PNG\r\n\x1a\n" + bytes(120)  # passes the upload's content sniffing
# What users type next to their photo: most earn a character, some never do.
HINTS = (
    "생수병", "페트병", "택배박스", "신문지", "우유팩", "음료 캔", "참치캔", "소주병",
    "플라스틱 용기", "과자 봉지", "스티로폼", "건전지", "형광등", "헌 옷", "고장난 선풍기",
    "치킨뼈", "영수증", "깨진 유리",
)


class DoneWatcher:
    """Tails every shard log from its current head and records each job's ``done``."""

    def __init__(self, redis: AsyncRedis, layout: Layout) -> None:
        self.redis = redis
        self.layout = layout
        self.done: dict[str, tuple[str, float]] = {}  # job id → (status, monotonic time)
        self._waiters: dict[str, asyncio.Future[tuple[str, float]]] = {}
        self._names = {
            registry.wire_name(ScanCompleted)[0]: "completed",
            registry.wire_name(ScanFailed)[0]: "failed",
        }

    async def run(self) -> None:
        log = LogReader(self.redis, self.layout)
        heads = {shard: await log.head(shard) for shard in range(self.layout.shards)}
        async with contextlib.aclosing(log.follow(heads, batch=2000, block_ms=500)) as tail:
            async for found in tail:
                now = time.monotonic()
                for batch in found:
                    for _, fields in batch.entries:
                        status = self._names.get(fields.get("type", ""))
                        if status is not None:
                            self._finish(fields["agg"], status, now)

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


async def submit_scan(conn: UserConnection, image_url: str, hint: str) -> tuple[int, Any]:
    """``POST /api/v1/scan``, retried on a dropped connection under one idempotency key (a
    keep-alive connection the server is closing can fail a request; the retry is safe)."""
    key = uuid.uuid4().hex
    for attempt in range(3):
        try:
            return await conn.post(
                "/api/v1/scan", {"image_url": image_url, "user_input": hint},
                X_Idempotency_Key=key,
            )
        except OSError:
            conn.close()
            if attempt == 2:
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def user_loop(
    conn: UserConnection, watcher: DoneWatcher, result: BenchResult, *,
    image_url: str, hint: str, deadline: float, start_delay: float, done_timeout: float,
) -> None:
    """One simulated user: scan its photo, wait for ``done``, repeat until ``deadline``."""
    await asyncio.sleep(start_delay)
    while time.monotonic() < deadline:
        started = time.monotonic()
        result.submitted += 1
        try:
            code, reply = await submit_scan(conn, image_url, hint)
        except OSError:
            code, reply = 0, None
        if code != 202:
            result.errors += 1
            await asyncio.sleep(1)
            continue
        try:
            async with asyncio.timeout(done_timeout):
                status, at = await watcher.wait(reply["job_id"])
        except TimeoutError:
            result.errors += 1
            continue
        if status == "completed":
            result.completed += 1
            result.latencies.append(at - started)
        else:
            result.failed += 1


async def run_bench(
    *, settings: Settings, users: int, latency: str, duration_s: float, ramp_s: float,
    scan_workers: int, nice: int = 0,
) -> BenchResult:
    profile = LatencyProfile.named(latency)
    result = BenchResult(users, latency, duration_s, profile.total_s, nice=nice)
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    async with ScanStack(
        settings, namespace=namespace, latency=latency, scan_workers=scan_workers,
        handler_workers=max(64, 2 * users), nice=nice,
    ) as stack, watched(stack) as watcher:
        async with http_clients(stack.base_url) as clients:
            # Photos are uploaded before the clock starts: the bench measures scans.
            gate = asyncio.Semaphore(32)

            async def upload(i: int) -> str:
                async with gate:
                    return await upload_photo(clients[i % len(clients)], auth[i])

            auth = [stack.auth(f"bench-{i}") for i in range(users)]
            images = await asyncio.gather(*(upload(i) for i in range(users)))
            rng = random.Random(7)
            load_at_start = os.getloadavg()[0]
            began = time.monotonic()
            deadline = began + duration_s
            conns = [UserConnection(stack.base_url, auth[i]) for i in range(users)]
            await asyncio.gather(*(
                user_loop(
                    conns[i], watcher, result, image_url=image, hint=rng.choice(HINTS),
                    deadline=deadline, start_delay=ramp_s * i / users,
                    done_timeout=max(60.0, 10 * profile.total_s),
                )
                for i, image in enumerate(images)
            ))
            for conn in conns:
                conn.close()
            result.duration_s = time.monotonic() - began
        result.pipeline = await pipeline_latencies(stack)
    result.load = (load_at_start, os.getloadavg()[0])
    await stack.forget()
    return result


async def pipeline_latencies(stack: ScanStack) -> list[float]:
    """Seconds from each command's append to its job's successful ``done``, from the log's own
    timestamps: the system's share of the end-to-end latency (no HTTP, no client)."""
    done_type, _ = registry.wire_name(ScanCompleted)
    submitted: dict[str, float] = {}
    finished: dict[str, float] = {}
    for keys in stack.layout.all():
        async for fields in _entries(stack.redis, keys.commands):
            submitted.setdefault(fields["agg"], float(fields["ts"]))
        async for fields in _entries(stack.redis, keys.events):
            if fields.get("type") == done_type:
                finished.setdefault(fields["agg"], float(fields["ts"]))
    return [finished[job] - submitted[job] for job in finished if job in submitted]


async def _entries(redis: AsyncRedis, stream: str) -> AsyncIterator[dict[str, str]]:
    last = "-"
    while True:
        entries: Any = await redis.xrange(stream, min=last, count=5000)
        for _, fields in entries:
            yield fields
        if len(entries) < 5000:
            return
        last = f"({entries[-1][0]}"


@asynccontextmanager
async def watched(stack: ScanStack) -> AsyncIterator[DoneWatcher]:
    watcher = DoneWatcher(stack.redis, stack.layout)
    task = asyncio.create_task(watcher.run())
    await asyncio.sleep(0.1)  # the watcher has read the heads before the first submission
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@bench_app.command("scan")
def scan(
    users: Annotated[int, typer.Option(min=1, help="Concurrent users.")] = 100,
    latency: Annotated[str, typer.Option(help="none | fast | production")] = "production",
    duration: Annotated[float, typer.Option(help="Seconds of submitting.")] = 120.0,
    ramp: Annotated[float, typer.Option(help="Seconds over which users start.")] = 10.0,
    scan_workers: Annotated[int, typer.Option(help="Scan worker processes.")] = 1,
    nice: Annotated[int, typer.Option(
        help="Priority of the stack and load generator (e.g. -10 on a shared machine, so "
        "other work does not count against the system; needs root)."
    )] = 0,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
) -> None:
    """Drive N users against a fresh stack; uses REDIS_URL or an embedded Redis."""
    from infra.embedded import resolve_services

    check_repeat(repeat, write)
    if nice:
        os.nice(nice)

    settings = Settings.from_env()
    redis = "external"
    if settings.redis_url is None:
        # Our own Redis (AOF on, like `eco2 up`); "unused" keeps Postgres from starting.
        settings, services = resolve_services(settings.with_(database_url="unused"))
        redis = "embedded"
    else:
        services = None
    runs: list[dict[str, float]] = []
    try:
        for n in range(1, repeat + 1):
            result = run_async(run_bench(
                settings=settings, users=users, latency=latency, duration_s=duration,
                ramp_s=ramp, scan_workers=scan_workers, nice=nice,
            ))
            typer.echo(f"repetition {n}/{repeat}:\n" + report(result))
            runs.append(figures(result))
    finally:
        if services is not None:
            services.close()
    spreads = summarize(runs, RATIOS)
    print_summary("Scan: eco2 bench scan", spreads, repeat)
    if write:
        command = (f"eco2 bench scan --users {users} --latency {latency} --duration {duration:g} "
                   f"--ramp {ramp:g} --scan-workers {scan_workers} --repeat {repeat}"
                   + (f" --nice {nice}" if nice else ""))
        record(output, "Scan: `eco2 bench scan`", command, spreads, repeat,
               [f"{redis} Redis", NOTE])
