"""``eco2 bench archive``: archiving and trimming a synthetic log, measured in the same run as
its ceilings.

Per run: load ``events`` synthetic events into a throwaway namespace; COPY the same rows into a
scratch ``event_log`` (the ceiling); archive the log (XRANGE + COPY + checkpoint per batch, one
process); rebuild the ``scans`` projection from Redis; trim with a zero hot window (Redis
``used_memory`` before/after); rebuild ``scans`` again, now from the archive. Prints min / median
/ max over the runs and appends them to ``BENCHMARKS.md``. ``used_memory`` is the whole
server's: leave REDIS_URL unset (an embedded Redis) for figures that are this run's alone.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import statistics
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

import schemas
from eventstore.archive import Archive, Entry, ensure_partitions, ensure_schema, row_of
from eventstore.archiver import ShardArchiver
from eventstore.keys import Layout
from eventstore.store import EventStore
from eventstore.trim import RetentionPolicy
from infra.bench.rebuild import _drop_namespace, _machine, _server_versions
from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    WriteOption,
    append_section,
    bench_services,
    check_repeat,
)
from infra.bootstrap import redis_client
from infra.settings import Settings
from projections.builtin import get_projection
from projections.context import ReadSide
from projections.rebuild import rebuild
from projections.synthetic import SyntheticLog
from readmodels.db import create_pool, quote_ident
from readmodels.migrate import migrate

if TYPE_CHECKING:
    from readmodels.db import Pool

bench_app = typer.Typer(help="Benchmarks.")
console = Console()
ZERO = RetentionPolicy(hot_retention_s=0, idempotency_window_s=0)
COLUMNS = ("archive ev/s", "COPY ev/s", "archive / COPY", "rebuild from Redis ev/s",
           "rebuild from archive ev/s", "archive / Redis", "used_memory before MB",
           "used_memory after MB")


async def _load(store: EventStore, events: int) -> int:
    log = SyntheticLog(schemas.registry, users=2_000)
    written = 0
    while written < events:
        for chunk in log.appends(1_000, chunk=1_000):
            results = await store.append_batch(chunk)
            written += sum(len(r.records) for r in results)
    return written


async def _rows(store: EventStore) -> list[list[Any]]:
    """Every shard's rows as the archiver will write them, in its batches (not timed)."""
    batches: list[list[Any]] = []
    for keys in store.layout.all():
        last = "0-0"
        while True:
            entries: list[Entry] = await store.redis.xrange(keys.events, min=f"({last}", count=5000)
            if not entries:
                break
            batches.append([row_of(keys.shard, i, f) for i, f in entries])
            last = entries[-1][0]
    return batches


async def _copy_ceiling(pool: Pool, batches: list[list[Any]]) -> float:
    """Seconds to COPY ``batches`` into a scratch ``event_log`` (same table, same batching)."""
    from eventstore.archive import COLUMNS as ARCHIVE_COLUMNS

    scratch = f"benchcopy_{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        await conn.execute(f"CREATE SCHEMA {quote_ident(scratch)}")
        await conn.execute(f"SET search_path = {quote_ident(scratch)}")
        try:
            await ensure_schema(conn)
            known: set[tuple[int, int]] = set()
            started = time.perf_counter()
            for rows in batches:
                async with conn.transaction():
                    await ensure_partitions(conn, rows[0][0], rows[0][1], rows[-1][1], known)
                    await conn.copy_records_to_table(
                        "event_log", records=rows, columns=ARCHIVE_COLUMNS
                    )
            return time.perf_counter() - started
        finally:
            await conn.execute("RESET search_path")
            await conn.execute(f"DROP SCHEMA {quote_ident(scratch)} CASCADE")


async def one_run(settings: Settings, events: int) -> dict[str, float]:
    assert settings.database_url is not None
    layout = Layout(f"bench{uuid.uuid4().hex[:10]}", settings.shards)
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    redis = await redis_client(settings, max_connections=32)
    pool = await create_pool(settings.database_url, schema, max_size=8)
    store = EventStore(redis, layout, schemas.registry, archive=Archive(pool))
    try:
        await migrate(pool)
        loaded = await _load(store, events)
        batches = await _rows(store)
        # Both timed paths run with the heap built so far frozen (as the archiver process
        # freezes its start-up heap): the collections their allocations trigger then do not
        # traverse this process's load generator and registry.
        gc.collect()
        gc.freeze()
        copy_s = await _copy_ceiling(pool, batches)
        del batches
        archivers = [ShardArchiver(redis, pool, layout, s, ZERO) for s in range(layout.shards)]
        started = time.perf_counter()
        archived = [(await a.archive())[1] for a in archivers]  # one process, shard by shard
        archive_s = time.perf_counter() - started
        gc.unfreeze()
        side = ReadSide(pool, settings.database_url, schema, redis, layout, schemas.registry)
        scans = get_projection("scans")
        from_redis = await rebuild(side, scans)
        before = int((await redis.info("memory"))["used_memory"])
        for archiver, position in zip(archivers, archived, strict=True):
            await archiver.trimmer.trim(position)
        after = int((await redis.info("memory"))["used_memory"])
        from_archive = await rebuild(side, scans)
        return {
            "events": loaded, "archive": loaded / archive_s, "copy": loaded / copy_s,
            "redis_rebuild": from_redis.rate, "archive_rebuild": from_archive.rate,
            "before": before / 1e6, "after": after / 1e6,
        }
    finally:
        gc.unfreeze()
        await _drop_namespace(store)
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        await pool.close()
        await redis.aclose()


def summary(runs: list[dict[str, float]]) -> list[tuple[str, float, float, float]]:
    """(column, min, median, max) over the runs."""
    values = {
        COLUMNS[0]: [r["archive"] for r in runs],
        COLUMNS[1]: [r["copy"] for r in runs],
        COLUMNS[2]: [r["archive"] / r["copy"] for r in runs],
        COLUMNS[3]: [r["redis_rebuild"] for r in runs],
        COLUMNS[4]: [r["archive_rebuild"] for r in runs],
        COLUMNS[5]: [r["archive_rebuild"] / r["redis_rebuild"] for r in runs],
        COLUMNS[6]: [r["before"] for r in runs],
        COLUMNS[7]: [r["after"] for r in runs],
    }
    return [(k, min(v), statistics.median(v), max(v)) for k, v in values.items()]


def _cell(name: str, value: float) -> str:
    return f"{value:.2f}" if ("/" in name and "ev/s" not in name) or "MB" in name else f"{value:,.0f}"


def markdown(runs: list[dict[str, float]], servers: str, command: str) -> str:
    lines = [
        "## Archive and trim (`eco2 bench archive`)",
        "",
        f"- command: `{command}`",
        f"- date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {_machine()}; {servers}",
        f"- {len(runs)} runs of {int(runs[0]['events']):,} synthetic events each; every figure"
        " of a run is measured in that run (COPY of the same rows into the same table; both"
        " rebuilds of `scans` over the same log)",
        "",
        "| measure | min | median | max |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {_cell(name, lo)} | {_cell(name, mid)} | {_cell(name, hi)} |"
          for name, lo, mid, hi in summary(runs)),
        "",
    ]
    return "\n".join(lines)


@bench_app.command("archive")
def archive_command(
    events: Annotated[int, typer.Option(help="Synthetic events per run.")] = 100_000,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
) -> None:
    """Archive events/s vs COPY, Redis memory before/after trimming, rebuild from the archive
    vs from Redis. Uses REDIS_URL / DATABASE_URL, or embedded servers for whichever is unset."""
    if events < 1:
        raise typer.BadParameter("--events must be positive")
    check_repeat(repeat, write)
    runs = repeat

    async def all_runs(settings: Settings) -> tuple[list[dict[str, float]], str]:
        results = []
        for n in range(runs):
            results.append(await one_run(settings, events))
            console.print(f"run {n + 1}/{runs}: {results[-1]}")
        assert settings.database_url is not None
        pool = await create_pool(settings.database_url, "public", max_size=1)
        redis = await redis_client(settings, max_connections=2)
        try:
            servers = await _server_versions(pool, EventStore(redis, Layout()))
        finally:
            await pool.close()
            await redis.aclose()
        return results, servers

    with bench_services(Settings.from_env(), postgres=True) as settings:
        results, servers = asyncio.run(all_runs(settings))
    table = Table("measure", "min", "median", "max")
    for name, lo, mid, hi in summary(results):
        table.add_row(name, _cell(name, lo), _cell(name, mid), _cell(name, hi))
    console.print(table)
    if write:
        append_section(output, markdown(results, servers,
                                        f"eco2 bench archive --events {events} --repeat {runs}"))
