"""``eco2 bench rebuild``: rebuild throughput over a large synthetic log, against COPY.

Loads ``events`` synthetic scan-chain events into a throwaway namespace (pipelined appends),
rebuilds each projection from position 0 into a throwaway schema, and measures in the same run
Postgres ``COPY`` of (a) the rows the scans rebuild produced and (b) one row per event — the
ceilings a projector cannot beat. Repeats that ``--repeat`` times, prints min / median / max
(each rebuild also as a fraction of that repetition's COPY) and appends them to ``BENCHMARKS.md``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import os
import platform
import resource
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

import schemas
from eventstore.keys import Layout
from eventstore.store import EventStore
from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    WriteOption,
    bench_services,
    check_repeat,
    print_repetition,
    print_summary,
    record,
    summarize,
)
from infra.bootstrap import redis_client
from infra.settings import Settings
from projections.builtin import select
from projections.context import ReadSide
from projections.rebuild import default_workers, rebuild
from projections.synthetic import SyntheticLog
from readmodels.db import connect, create_pool, quote_ident
from readmodels.migrate import migrate
from readmodels.tables import SCANS

if TYPE_CHECKING:
    from readmodels.db import Pool

bench_app = typer.Typer(help="Benchmarks.")


@bench_app.callback()
def _bench() -> None:
    """Benchmarks (a group, so ``rebuild`` stays a sub-command when more are added)."""


EVENT_COLUMNS = ["shard", "position", "aggregate_id", "type", "data", "recorded_at"]


async def _load(store: EventStore, events: int) -> tuple[int, float, list[tuple[Any, ...]]]:
    log = SyntheticLog(schemas.registry, users=2_000)
    rows: list[tuple[Any, ...]] = []
    started = time.perf_counter()
    # A million kept rows would make every collection rescan them (quadratic): the generated
    # objects are acyclic, so reference counting alone frees them while loading.
    gc.disable()
    try:
        await _append_all(store, log, events, rows)
    finally:
        gc.enable()
    return len(rows), time.perf_counter() - started, rows


async def _append_all(
    store: EventStore, log: SyntheticLog, events: int, rows: list[tuple[Any, ...]]
) -> None:
    while len(rows) < events:
        for chunk in log.appends(1_000, chunk=1_000):
            results = await store.append_batch(chunk)
            for (envelopes, _), result in zip(chunk, results, strict=True):
                for env, rec in zip(envelopes, result.records, strict=True):
                    rows.append(
                        (
                            rec.shard,
                            rec.position,
                            env.aggregate_id,
                            env.type,
                            json.dumps(env.data, ensure_ascii=False),
                            dt.datetime.fromtimestamp(env.timestamp, dt.UTC),
                        )
                    )


async def _copy_events(pool: Pool, event_rows: list[tuple[Any, ...]]) -> float:
    """Seconds to COPY one row per event into a fresh table (the ingest ceiling)."""
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE TABLE bench_events (shard integer, position bigint, aggregate_id text,"
            " type text, data jsonb, recorded_at timestamptz, PRIMARY KEY (shard, position))"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_events", records=event_rows, columns=EVENT_COLUMNS)
        return time.perf_counter() - started


async def _copy_scans(pool: Pool) -> tuple[int, float]:
    """(rows, seconds) to COPY the rows the scans rebuild produced into a fresh table."""
    scratch = "s" + uuid.uuid4().hex[:8]
    spec = SCANS.tables[0]
    async with pool.acquire() as conn:
        records = await conn.fetch("SELECT * FROM scans")
        rows = [tuple(r) for r in records]
        names = list(records[0].keys()) if records else []
        for statement in spec.create_sql(scratch):
            await conn.execute(statement)
        started = time.perf_counter()
        await conn.copy_records_to_table(spec.physical(scratch), records=rows, columns=names)
        return len(rows), time.perf_counter() - started


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


async def _server_versions(pool: Pool, store: EventStore) -> str:
    async with pool.acquire() as conn:
        pg = str(await conn.fetchval("SHOW server_version"))
    info: dict[str, Any] = await store.redis.info("server")
    return f"PostgreSQL {pg}, Redis {info.get('redis_version', '?')}"


async def _drop_namespace(store: EventStore) -> None:
    pattern = "{" + store.layout.namespace + ":*"
    batch: list[str] = []
    async for key in store.redis.scan_iter(match=pattern, count=5_000):
        batch.append(key)
        if len(batch) >= 2_000:
            await store.redis.unlink(*batch)
            batch = []
    if batch:
        await store.redis.unlink(*batch)


async def bench_rebuild(
    settings: Settings,
    events: int,
    *,
    projections: list[str] | None = None,
    batch_size: int = 5000,
    workers: int = 1,
) -> dict[str, Any]:
    """Run the benchmark against ``settings``' Redis and Postgres; returns the figures."""
    if settings.database_url is None:
        raise RuntimeError("DATABASE_URL is not resolved (start embedded services first)")
    tag = uuid.uuid4().hex[:10]
    layout = Layout(f"bench{tag}", settings.shards)
    schema = f"bench_{tag}"
    redis = await redis_client(settings)
    pool = await create_pool(settings.database_url, schema, max_size=settings.shards + 4)
    store = EventStore(redis, layout, schemas.registry)
    result: dict[str, Any] = {"events": events, "shards": settings.shards, "workers": workers}
    try:
        await migrate(pool)
        loaded, load_s, event_rows = await _load(store, events)
        result.update(loaded=loaded, load_s=load_s, servers=await _server_versions(pool, store))
        result["copy_events_s"] = await _copy_events(pool, event_rows)
        del event_rows  # not kept alive (and rescanned by the collector) during the rebuilds
        side = ReadSide(
            pool,
            settings.database_url,
            schema,
            redis,
            layout,
            schemas.registry,
            settings.redis_url,
        )
        rebuilds: dict[str, dict[str, float]] = {}
        result["load_before"] = os.getloadavg()[0]
        for projection in select(projections):
            cpu = _cpu_seconds()
            report = await rebuild(side, projection, batch_size=batch_size, workers=workers)
            rebuilds[projection.name] = {
                "entries": report.entries,
                "applied": report.applied,
                "seconds": report.seconds,
                "rate": report.rate,
                "cpu_s": _cpu_seconds() - cpu,
            }
        result["load_after"] = os.getloadavg()[0]
        result["rebuild"] = rebuilds
        result["scan_rows"], result["copy_scans_s"] = await _copy_scans(pool)
    finally:
        await pool.close()
        conn = await connect(settings.database_url, "public")
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()
        await _drop_namespace(store)
        await redis.aclose()
    return result


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the replay workers)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def figures(result: dict[str, Any]) -> dict[str, float]:
    """One repetition's rates (events/s): the load, every rebuild, and the COPY ceilings."""
    loaded = result["loaded"]
    out = {"load (pipelined appends)": loaded / result["load_s"]}
    for name, r in result["rebuild"].items():
        out[f"rebuild `{name}`"] = r["rate"]
        out[f"rebuild `{name}` projector CPU s"] = r["cpu_s"]
    out[COPY] = loaded / result["copy_events_s"]
    out[f"COPY the rebuilt `scans` rows ({result['scan_rows']:,}), per event"] = (
        loaded / result["copy_scans_s"]
    )
    return out


COPY = "COPY one row per event (ceiling)"


@bench_app.command("rebuild")
def rebuild_command(
    events: Annotated[int, typer.Option(help="Synthetic events to load.")] = 1_000_000,
    batch_size: Annotated[int, typer.Option(help="Log entries per transaction.")] = 5000,
    workers: Annotated[int, typer.Option(help="Replay processes (0: one per CPU).")] = 0,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
) -> None:
    """Rebuild events/s over a synthetic log, with Postgres COPY as the ceiling.

    Uses REDIS_URL / DATABASE_URL, or embedded servers for whichever is unset.
    """
    check_repeat(repeat, write)
    runs: list[dict[str, float]] = []
    with bench_services(Settings.from_env(), postgres=True) as settings:
        workers = workers or default_workers(settings.shards)
        for n in range(1, repeat + 1):
            result = asyncio.run(
                bench_rebuild(settings, events, batch_size=batch_size, workers=workers)
            )
            runs.append(figures(result))
            print_repetition(n, repeat, runs[-1])
    ratios = [(name, COPY) for name in runs[0] if name.startswith("rebuild") and "CPU" not in name]
    spreads = summarize(runs, ratios)
    print_summary("Rebuild throughput (events/s)", spreads, repeat)
    if write:
        command = (f"eco2 bench rebuild --events {events} --batch-size {batch_size} "
                   f"--workers {workers} --repeat {repeat}")
        record(output, "Rebuild throughput (`eco2 bench rebuild`)", command, spreads, repeat, [
            f"{result['servers']}; {result['shards']} shards, {workers} replay processes",
            f"log: {result['loaded']:,} synthetic events (scan chains, 1 in 20 failing, user "
            "registrations and character grants), loaded by pipelined appends; figures are "
            "events/s except CPU seconds (those of the rebuilding processes)",
        ])


if __name__ == "__main__":
    bench_app()
