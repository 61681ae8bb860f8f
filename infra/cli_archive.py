"""``eco2 archive run|now|status`` and ``eco2 export``: the archive tier from the command line."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from eventstore.archive import Archive
from eventstore.archiver import ArchiverOptions, ArchiverService, archive_now
from eventstore.keys import Layout
from eventstore.metrics import archive_metrics
from eventstore.trim import FloorSource, RetentionPolicy
from infra.bootstrap import redis_client
from infra.probes import redis_ready, serve_probes
from infra.settings import Settings
from projections.trim_floor import projector_floor
from readmodels.db import create_pool

if TYPE_CHECKING:
    from eventstore.archiver import CycleReport
    from readmodels.db import Pool

archive_app = typer.Typer(help="The archive tier: copy the log to Postgres, trim Redis.")
export_app = typer.Typer(
    help="Export the archive to Parquet or JSONL (one file per shard and day).",
    invoke_without_command=True,
)
console = Console(highlight=False)


def policy_of(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        hot_retention_s=settings.hot_retention_s,
        hot_max_events=settings.hot_max_events,
        idempotency_window_s=settings.idempotency_window_s,
    )


def floors_of(pool: Pool) -> list[tuple[str, FloorSource]]:
    """Floors beyond the log's own readers: the projectors' checkpoints."""

    async def projectors(shard: int) -> int | None:
        return await projector_floor(pool, shard)

    return [("projectors", projectors)]


def _settings() -> Settings:
    settings = Settings.from_env()
    if settings.redis_url is None or settings.database_url is None:
        console.print("[red]REDIS_URL and DATABASE_URL must be set (or run under eco2 up)[/red]")
        raise typer.Exit(2)
    return settings


async def run_archiver(settings: Settings) -> None:
    """The archiver process of ``eco2 up``: every shard it can lease, until cancelled."""
    assert settings.database_url is not None
    redis = await redis_client(settings, max_connections=16)
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=6,
                             application="eco2-archiver")
    try:
        service = ArchiverService(
            redis, pool, settings.database_url, settings.db_schema,
            _layout(settings), policy_of(settings), floors_of(pool),
            ArchiverOptions(interval_s=settings.archive_interval_s),
        )
        archive_metrics()  # registered at start: a scrape shows the families at once
        # The archiver allocates two lists per entry it reads; with the start-up heap frozen,
        # the collections those allocations trigger do not traverse it.
        gc.collect()
        gc.freeze()

        async def ready() -> str | None:
            return await redis_ready(redis)

        async with serve_probes(settings, "archiver", ready):
            await service.run()
    finally:
        await pool.close()
        await redis.aclose()


async def run_once(settings: Settings) -> list[CycleReport]:
    """One archive+trim cycle of every shard (``eco2 archive now``)."""
    assert settings.database_url is not None
    redis = await redis_client(settings, max_connections=8)
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=6)
    try:
        return await archive_now(
            redis, pool, settings.db_schema, _layout(settings), policy_of(settings),
            floors_of(pool),
        )
    finally:
        await pool.close()
        await redis.aclose()


def _layout(settings: Settings) -> Layout:
    return Layout(settings.namespace, settings.shards)


@archive_app.command("run")
def run_cmd() -> None:
    """Archive and trim continuously (the archiver process of ``eco2 up``)."""
    settings = _settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        asyncio.run(run_archiver(settings))
    except KeyboardInterrupt:
        pass


@archive_app.command("now")
def now_cmd() -> None:
    """Run one archive+trim cycle of every shard and print what it did."""
    reports = asyncio.run(run_once(_settings()))
    table = Table("shard", "head", "copied", "trimmed to", "bounded by", "removed: log",
                  "streams", "ids", "commands", "retries")
    for r in reports:
        t = r.trim
        table.add_row(*map(str, (r.shard, r.head, r.copied, t.floor, t.limit, t.log_trimmed,
                                 t.streams_deleted, t.ids_forgotten, t.commands_trimmed,
                                 t.retry_trimmed)))
    console.print(table)


@dataclass(frozen=True)
class ShardStatus:
    shard: int
    head: int
    archived: int
    hot_from: int  # first position still in Redis (head + 1 when none)
    hot_entries: int
    aggregates_cold: int  # the trim point at which aggregate streams were last removed


async def status(settings: Settings) -> tuple[list[ShardStatus], dict[str, Any]]:
    """Per shard: head, archived up to, hot range; and Redis memory figures."""
    assert settings.database_url is not None
    redis = await redis_client(settings, max_connections=4)
    pool = await create_pool(settings.database_url, settings.db_schema, max_size=2)
    try:
        archived = await Archive(pool).checkpoints()
        rows = []
        for keys in _layout(settings).all():
            async with redis.pipeline(transaction=True) as pipe:
                pipe.get(keys.head)
                pipe.get(keys.floor)
                pipe.xlen(keys.events)
                pipe.get(keys.cold)
                head, floor, length, cold = await pipe.execute()
            rows.append(ShardStatus(
                keys.shard, int(head or 0), archived.get(keys.shard, (0, None))[0],
                int(floor or 0) + 1, int(length), int(cold or 0),
            ))
        info = await redis.info("memory")
        memory = {k: info.get(k) for k in ("used_memory", "used_memory_human", "maxmemory")}
        return rows, memory
    finally:
        await pool.close()
        await redis.aclose()


@archive_app.command("status")
def status_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per shard: head, archived up to, hot range; Redis memory."""
    rows, memory = asyncio.run(status(_settings()))
    if as_json:
        console.print_json(json.dumps({"shards": [r.__dict__ for r in rows], "redis": memory}))
        return
    table = Table("shard", "head", "archived up to", "hot range", "hot entries")
    for r in rows:
        hot = f"{r.hot_from}..{r.head}" if r.hot_from <= r.head else "(none)"
        table.add_row(str(r.shard), str(r.head), str(r.archived), hot, str(r.hot_entries))
    console.print(table)
    console.print(f"Redis used_memory: {memory.get('used_memory_human')} "
                  f"({memory.get('used_memory')} bytes)")


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not a date (YYYY-MM-DD)") from exc


@export_app.callback()
def export_cmd(
    out: Annotated[Path, typer.Option(help="Folder for the files.")] = Path("export"),
    since: Annotated[str | None, typer.Option(help="First day (UTC, YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Last day, inclusive.")] = None,
    types: Annotated[str | None, typer.Option(help="Comma list of event type names.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="parquet or jsonl.")] = "parquet",
) -> None:
    """Write the archive's events as one file per shard and day."""
    from eventstore.export import ExportQuery, export

    if fmt not in ("parquet", "jsonl"):
        raise typer.BadParameter("--format must be parquet or jsonl")
    settings = _settings()
    query = ExportQuery(
        since=_day(since), until=_day(until),
        types=tuple(t.strip() for t in types.split(",") if t.strip()) if types else (),
    )

    async def go() -> list[tuple[Path, int]]:
        assert settings.database_url is not None
        pool = await create_pool(settings.database_url, settings.db_schema, max_size=2)
        try:
            return await export(pool, out, query, fmt)
        finally:
            await pool.close()

    files = asyncio.run(go())
    for path, count in files:
        console.print(f"{path}  {count:,} events")
    console.print(f"{len(files)} files, {sum(c for _, c in files):,} events "
                  f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)")
