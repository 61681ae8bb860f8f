"""``eco2 bench append``: the log's write and consume throughput, against baselines measured in
the same run on the same Redis: raw pipelined XADD, and the eventsourcing library's POPO and
SQLite recorders (plus our recorder through ``Application.save``)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated

import typer
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from rich.console import Console
from rich.table import Table

from eventstore.consumer import Runner, RunnerOptions, Subscription
from eventstore.faststream_app import faststream_app
from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis, open_redis
from eventstore.store import EventStore
from infra.settings import Settings
from schemas.envelope import Envelope
from schemas.registry import Event, Message, MessageRegistry

bench_registry = MessageRegistry()


class Counter(Aggregate):
    @event("Ticked")
    def tick(self) -> None:
        pass


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


def tick(aggregate_id: str, n: int) -> Envelope:
    return bench_registry.envelope(Tick(n=n), aggregate_id=aggregate_id, aggregate_type="bench")


async def _timed(name: str, events: int, work: Callable[[], Awaitable[None]]) -> Figure:
    started = time.perf_counter()
    await work()
    return Figure(name, events, time.perf_counter() - started)


async def single_appends(store: EventStore, total: int, writers: int = 64) -> Figure:
    async def writer(w: int) -> None:
        for i in range(w, total, writers):
            await store.append([tick(f"single-{i}", i)], expected_version=0)

    async def work() -> None:
        await asyncio.gather(*(writer(w) for w in range(writers)))

    return await _timed(f"append, 1 event/call, {writers} writers", total, work)


async def batched_appends(store: EventStore, total: int, per_call: int = 100) -> Figure:
    calls = total // per_call
    pipelined = 10  # appends per round trip

    async def pipeline(start: int) -> None:
        for first in range(start, calls, pipelined * 4):
            batch = [
                ([tick(f"batch-{c}", k) for k in range(per_call)], 0)
                for c in range(first, min(first + pipelined, calls))
            ]
            await store.append_batch(batch)

    async def work() -> None:
        await asyncio.gather(*(pipeline(s * pipelined) for s in range(4)))

    return await _timed(f"append, {per_call} events/call, pipelined", calls * per_call, work)


async def raw_xadd(redis: AsyncRedis, layout: Layout, total: int) -> Figure:
    fields = tick("raw", 0).to_fields()
    key = f"{layout.keys(0).tag}:raw"

    async def pipeline(start: int) -> None:
        for first in range(start, total, 4000):
            async with redis.pipeline(transaction=False) as pipe:
                for _ in range(min(1000, total - first)):
                    pipe.xadd(key, fields)
                await pipe.execute()

    async def work() -> None:
        await asyncio.gather(*(pipeline(s * 1000) for s in range(4)))

    return await _timed("baseline: raw XADD, pipelined", total, work)


async def consume_raw(store: EventStore, total: int) -> Figure:
    seen = 0
    done = asyncio.Event()

    async def noop(envelope: Envelope, message: Message) -> None:
        nonlocal seen
        seen += 1
        if seen >= total:
            done.set()

    runner = Runner(
        store.redis, store.layout, bench_registry,
        Subscription("bench-raw", "events", {Tick: noop}),
        options=RunnerOptions(workers=256, batch=200, block_ms=100),
    )

    async def work() -> None:
        task = asyncio.create_task(runner.run())
        await done.wait()
        runner.stop()
        await task

    return await _timed("consume, raw batched runner (no-op)", total, work)


async def consume_faststream(redis_url: str, store: EventStore, total: int) -> Figure:
    seen = 0
    done = asyncio.Event()

    async def noop(envelope: Envelope, message: Message) -> None:
        nonlocal seen
        seen += 1
        if seen >= total:
            done.set()

    app = await faststream_app(
        redis_url, store.layout, bench_registry,
        Subscription("bench-fs", "events", {Tick: noop}),
        options=RunnerOptions(workers=400, batch=100, block_ms=100),
    )

    async def work() -> None:
        task = asyncio.create_task(app.run())
        await done.wait()
        app.exit()
        await task

    return await _timed("consume, FastStream batch subscribers (no-op)", total, work)


def eventsourcing_save(total: int, persistence: str, env: dict[str, str]) -> Figure:
    """Application.save of aggregates with 10 events each, with a library recorder."""
    app = Application[uuid.UUID](env={"PERSISTENCE_MODULE": persistence, **env})
    aggregates = []
    for _ in range(total // 10):
        counter = Counter()
        for _ in range(9):
            counter.tick()
        aggregates.append(counter)
    started = time.perf_counter()
    for counter in aggregates:
        app.save(counter)
    seconds = time.perf_counter() - started
    app.close()
    return Figure(f"eventsourcing Application.save, {persistence.rsplit('.', 1)[-1]}", total, seconds)


async def run_append_bench(redis_url: str, *, events: int = 50_000) -> list[Figure]:
    """All figures of ``eco2 bench append`` in one run, in a throwaway namespace."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    layout = Layout(namespace, 4)
    redis = await open_redis(redis_url, decode_responses=True, max_connections=512)
    store = EventStore(redis, layout, bench_registry)
    figures: list[Figure] = []
    try:
        figures.append(await raw_xadd(redis, layout, events * 2))
        figures.append(await single_appends(store, events // 2))
        figures.append(await batched_appends(store, events * 2))
        consumed = events // 2 + events * 2
        figures.append(await consume_raw(store, consumed))
        figures.append(await consume_faststream(redis_url, store, consumed))
        es_events = min(events, 20_000)
        with tempfile.TemporaryDirectory() as tmp:
            runs = [
                ("eventsourcing.popo", {}),
                ("eventsourcing.sqlite", {"SQLITE_DBNAME": os.path.join(tmp, "bench.db")}),
                (
                    "eventstore.es_persistence",
                    {"REDIS_URL": redis_url, "ECO2_NAMESPACE": namespace + "es"},
                ),
            ]
            for module, env in runs:
                figures.append(await asyncio.to_thread(eventsourcing_save, es_events, module, env))
    finally:
        for ns in (namespace, namespace + "es"):
            with contextlib.suppress(Exception):
                keys = [k async for k in redis.scan_iter(match=f"{{{ns}:*", count=1000)]
                for i in range(0, len(keys), 500):
                    await redis.delete(*keys[i : i + 500])
        await redis.aclose()
    return figures


bench_app = typer.Typer(help="Benchmarks.")


@bench_app.command("append")
def append_command(
    events: Annotated[int, typer.Option(help="Scale: single appends = events/2, batched = 2×.")]
    = 50_000,
    record: Annotated[bool, typer.Option(help="Append the table to BENCHMARKS.md.")] = True,
) -> None:
    """Append and consume throughput of the log, with baselines from the same run; uses
    REDIS_URL or an embedded Redis."""
    from infra.embedded import resolve_services

    settings = Settings.from_env()
    services = None
    if settings.redis_url is None:
        settings, services = resolve_services(settings.with_(database_url="unused"))
    try:
        assert settings.redis_url is not None
        figures = asyncio.run(run_append_bench(settings.redis_url, events=events))
    finally:
        if services is not None:
            services.close()
    baseline = figures[0].rate
    table = Table(title="eco2 bench append")
    for column in ("measurement", "events", "events/s", "× raw XADD"):
        table.add_column(column)
    rows = []
    for f in figures:
        row = (f.name, f"{f.events:,}", f"{f.rate:,.0f}", f"{f.rate / baseline:.2f}")
        table.add_row(*row)
        rows.append(row)
    Console().print(table)
    if record:
        record_benchmark(
            "eco2 bench append",
            f"eco2 bench append --events {events}",
            ["measurement", "events", "events/s", "× raw XADD"],
            rows,
        )


def record_benchmark(title: str, command: str, header: list[str], rows: Sequence[Sequence[str]],
                     notes: str = "") -> None:
    """Append one result table to BENCHMARKS.md (command, machine, date, figures)."""
    machine = f"{platform.node()} · {os.cpu_count()} cores · Python {platform.python_version()}"
    lines = [
        f"\n## {title} — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC\n",
        f"- command: `{command}`",
        f"- machine: {machine}\n",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]
    if notes:
        lines += ["", notes]
    with open("BENCHMARKS.md", "a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
