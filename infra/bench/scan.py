"""``eco2 bench scan``: N concurrent users scanning through the HTTP API, done read from the log.

Each simulated user uploads one photo, then repeats until the time is up: ``POST /api/v1/scan``
→ wait for its job's ``done`` (seen by tailing the shard logs) → again. The bench starts its own
stack (gateway, character service, scan and reward workers) on a fresh namespace with the
chosen latency profile, and reports completion, scans/min and end-to-end p50/p95 next to the
original system's figures and the ideal (the simulated model time of one scan).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import typer

from agents.llm.latency import LatencyProfile
from eventstore.redis_client import AsyncRedis
from infra.bench.clients import run_measured
from infra.bench.http import http_clients
from infra.bench.processes import slices
from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    WriteOption,
    bench_services,
    check_repeat,
    print_summary,
    record,
    run_repetitions,
    summarize,
)
from infra.bench.scan_record import NOTE, RATIOS, BenchResult, figures, report
from infra.bench.scan_users import (
    PNG,
    DoneWatcher,
    ScanPart,
    ScanUser,
    scan_client,
    upload_photo,
    watched_log,
)
from infra.cli_workers import run_async
from infra.settings import Settings
from infra.stacks import ScanStack
from schemas import registry
from schemas.registry import Event
from schemas.scan import AnswerCompleted, ScanCompleted, ScanQueued, VisionCompleted

__all__ = ["HINTS", "PNG", "DoneWatcher", "bench_app", "upload_photo", "watched"]

bench_app = typer.Typer(help="Load benchmarks against a stack started for the run.")

# What users type next to their photo: most earn a character, some never do.
HINTS = (
    "생수병", "페트병", "택배박스", "신문지", "우유팩", "음료 캔", "참치캔", "소주병",
    "플라스틱 용기", "과자 봉지", "스티로폼", "건전지", "형광등", "헌 옷", "고장난 선풍기",
    "치킨뼈", "영수증", "깨진 유리",
)
USERS_PER_CLIENT = 1250  # simulated users per load-generating process (see --clients)


async def run_bench(
    *, settings: Settings, users: int, latency: str, duration_s: float, ramp_s: float,
    scan_workers: int, nice: int = 0, clients: int = 0,
) -> BenchResult:
    profile = LatencyProfile.named(latency)
    result = BenchResult(users, latency, duration_s, profile.total_s, nice=nice)
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    processes = clients or math.ceil(users / USERS_PER_CLIENT)
    async with ScanStack(  # its children inherit the priority ``scan`` gave this process
        settings, namespace=namespace, latency=latency, scan_workers=scan_workers,
        handler_workers=max(64, 2 * users),
    ) as stack:
        async with http_clients(stack.base_url) as pool:
            # Photos are uploaded before the clock starts: the bench measures scans.
            gate = asyncio.Semaphore(32)

            async def upload(i: int) -> str:
                async with gate:
                    return await upload_photo(pool[i % len(pool)], auth[i])

            auth = [stack.auth(f"bench-{i}") for i in range(users)]
            images = await asyncio.gather(*(upload(i) for i in range(users)))
        rng = random.Random(7)
        everyone = [ScanUser(f"bench-{i}", auth[i], image, rng.choice(HINTS), ramp_s * i / users)
                    for i, image in enumerate(images)]
        done_timeout = max(60.0, 10 * profile.total_s)
        parts = [ScanPart(stack.base_url, stack.env["REDIS_URL"], stack.layout,
                          [everyone[i] for i in part], duration_s, done_timeout,
                          watched_shards(stack.layout.shards, processes, n))
                 for n, part in enumerate(slices(users, processes))]
        run = await run_measured(
            scan_client, parts, redis=stack.redis, timeout_s=duration_s + done_timeout + 60,
            roles={name: p.pid for name, p in stack.processes.items()})
        result.seen, result.duration_s = run.tally, run.duration_s
        result.cpu, result.lags = run.cpu, run.lags
        result.pipeline, result.hops = await pipeline_latencies(stack)
    result.load = (run.load_at_start, os.getloadavg()[0])
    await stack.forget()
    return result


def watched_shards(shards: int, processes: int, n: int) -> tuple[int, ...]:
    """The shards whose logs client process ``n`` of ``processes`` tails, its users' jobs being
    placed there: each shard to one process when they divide evenly (every shard keeps its
    share of the load), else every shard to every process."""
    if shards % processes:
        return tuple(range(shards))
    return tuple(range(n, shards, processes))


@asynccontextmanager
async def watched(stack: ScanStack) -> AsyncIterator[DoneWatcher]:
    """A ``DoneWatcher`` on the stack's shard logs (the e2e tests wait on it)."""
    async with watched_log(stack.redis, stack.layout) as watcher:
        yield watcher


# The pipeline's hops, each from the previous mark (the command's append first) to this event:
# the scan worker's pick-up, the vision stage (with the rule), the answer stage, the reward.
HOPS: tuple[tuple[str, type[Event]], ...] = (
    ("pick-up", ScanQueued),
    ("vision", VisionCompleted),
    ("answer", AnswerCompleted),
    ("reward", ScanCompleted),
)


async def pipeline_latencies(stack: ScanStack) -> tuple[list[float], dict[str, list[float]]]:
    """Seconds from each command's append to its job's successful ``done``, from the log's own
    timestamps: the system's share of the end-to-end latency (no HTTP, no client); and each
    hop's seconds (``HOPS``), which show where a slow pipeline spends its time."""
    marks = {registry.wire_name(event)[0]: n for n, (_, event) in enumerate(HOPS, start=1)}
    seen: dict[str, dict[int, float]] = {}  # job → mark (0: the command, n: HOPS[n - 1]) → ts
    for keys in stack.layout.all():
        async for fields in _entries(stack.redis, keys.commands):
            seen.setdefault(fields["agg"], {}).setdefault(0, float(fields["ts"]))
        async for fields in _entries(stack.redis, keys.events):
            n, job = marks.get(fields.get("type", "")), seen.get(fields["agg"])
            if n is not None and job is not None:
                job.setdefault(n, float(fields["ts"]))
    done = [times for times in seen.values() if len(times) == len(HOPS) + 1]
    hops = {name: [t[n] - t[n - 1] for t in done] for n, (name, _) in enumerate(HOPS, start=1)}
    return [t[len(HOPS)] - t[0] for t in done], hops


async def _entries(redis: AsyncRedis, stream: str) -> AsyncIterator[dict[str, str]]:
    last = "-"
    while True:
        entries: Any = await redis.xrange(stream, min=last, count=5000)
        for _, fields in entries:
            yield fields
        if len(entries) < 5000:
            return
        last = f"({entries[-1][0]}"


@bench_app.command("scan")
def scan(
    users: Annotated[int, typer.Option(min=1, help="Concurrent users.")] = 100,
    latency: Annotated[str, typer.Option(help="none | fast | production")] = "production",
    duration: Annotated[float, typer.Option(help="Seconds of submitting.")] = 120.0,
    ramp: Annotated[float, typer.Option(help="Seconds over which users start.")] = 10.0,
    scan_workers: Annotated[int | None, typer.Option(
        min=1, help="Scan worker processes (default: ECO2_SCAN_WORKERS, as eco2 up runs).")] = None,
    clients: Annotated[int, typer.Option(
        help=f"Load-generating processes (0: one per {USERS_PER_CLIENT} users), so the "
        "generator's own CPU does not set the pace of what it measures."
    )] = 0,
    nice: Annotated[int, typer.Option(
        help="Priority of the stack and load generator (e.g. -10 on a shared machine, so "
        "other work does not count against the system; needs root)."
    )] = 0,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
) -> None:
    """Drive N users against a fresh stack; uses REDIS_URL or an embedded Redis."""
    check_repeat(repeat, write)
    if nice:
        os.nice(nice)

    settings = Settings.from_env()
    redis = "embedded" if settings.redis_url is None else "external"
    scan_workers = scan_workers or settings.scan_workers
    with bench_services(settings) as settings:
        runs = run_repetitions(repeat, lambda: run_async(run_bench(
            settings=settings, users=users, latency=latency, duration_s=duration,
            ramp_s=ramp, scan_workers=scan_workers, nice=nice, clients=clients,
        )), report, figures)
    spreads = summarize(runs, RATIOS)
    print_summary("Scan: eco2 bench scan", spreads, repeat)
    if write:
        command = (f"eco2 bench scan --users {users} --latency {latency} --duration {duration:g} "
                   f"--ramp {ramp:g} --scan-workers {scan_workers} --clients {clients} --repeat {repeat}"
                   + (f" --nice {nice}" if nice else ""))
        record(output, "Scan: `eco2 bench scan`", command, spreads, repeat,
               [f"{redis} Redis; workers at nice +{settings.worker_nice} (ECO2_WORKER_NICE)", NOTE])
