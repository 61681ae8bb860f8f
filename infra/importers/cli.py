"""``eco2 import …``: load drop-off points and news into the read models.

    eco2 import locations battery_lamp|clothing|medicine FILE.csv   # 표준데이터 CSV
    eco2 import places zero_waste|recycling_center FILE.json
    eco2 import news FILE.json|FILE.xml [--category auto] [--source NAME]
    eco2 import feeds [--every SECONDS]                              # ECO2_NEWS_FEEDS
    eco2 import samples [--force]                                    # shipped SAMPLE data

Settings come from the environment (``DATABASE_URL``, ``ECO2_DB_SCHEMA``); migrations are
applied first, so a fresh database works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from infra.importers.feeds import HttpFeedFetcher, collect_into, feed_sources
from infra.importers.news_files import read_news_file
from infra.importers.places_json import PLACE_KINDS, read_places
from infra.importers.public_bins import BIN_DATASETS, read_bins
from infra.importers.samples import load_samples
from infra.importers.tabular import ImportReport
from infra.settings import Settings, SettingsError
from readmodels.db import create_pool
from readmodels.locations_store import optimize_locations, replace_source, upsert_locations
from readmodels.migrate import migrate
from readmodels.news import upsert_articles

if TYPE_CHECKING:
    from readmodels.db import Pool

import_app = typer.Typer(help="Import drop-off points and news (public datasets, feeds, samples).")
console = Console(highlight=False)
T = TypeVar("T")

FileArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)]


def _with_pool(job: Callable[[Pool, Settings], Awaitable[T]]) -> T:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if settings.database_url is None:
        console.print("[red]DATABASE_URL is not set[/red] (start `eco2 services` and export it)")
        raise typer.Exit(2)
    dsn = settings.database_url

    async def main() -> T:
        pool = await create_pool(dsn, settings.db_schema, max_size=4, application="eco2-import")
        try:
            await migrate(pool)
            return await job(pool, settings)
        finally:
            await pool.close()

    return asyncio.run(main())


def _is_sample(path: Path) -> bool:
    # the shipped samples are named sample_*; their rows must stay flagged when re-imported
    return path.name.startswith("sample_")


@import_app.command("locations")
def import_locations(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(BIN_DATASETS)}")],
    path: FileArg,
    keep_missing: Annotated[
        bool, typer.Option(help="Keep rows of this dataset that the file no longer lists.")
    ] = False,
) -> None:
    """Import a collection-bin standard dataset (CSV, UTF-8 or CP949)."""
    if kind not in BIN_DATASETS:
        raise typer.BadParameter(f"use one of {', '.join(BIN_DATASETS)}", param_hint="KIND")
    dataset = BIN_DATASETS[kind]
    report = ImportReport(dataset.source)

    async def job(pool: Pool, _: Settings) -> None:
        records = list(read_bins(path, kind, report, sample=_is_sample(path)))
        if keep_missing:
            report.written = await upsert_locations(pool, records)
        else:
            report.written = await replace_source(pool, dataset.source, records)
        await optimize_locations(pool)

    _with_pool(job)
    console.print(report.summary())


@import_app.command("places")
def import_places(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(PLACE_KINDS)}")],
    path: FileArg,
    keep_missing: Annotated[
        bool, typer.Option(help="Keep rows of this dataset that the file no longer lists.")
    ] = False,
) -> None:
    """Import zero-waste shops or recycling centres (JSON)."""
    if kind not in PLACE_KINDS:
        raise typer.BadParameter(f"use one of {', '.join(PLACE_KINDS)}", param_hint="KIND")
    source = PLACE_KINDS[kind][0]
    report = ImportReport(source)

    async def job(pool: Pool, _: Settings) -> None:
        records = list(read_places(path, kind, report, sample=_is_sample(path)))
        if keep_missing:
            report.written = await upsert_locations(pool, records)
        else:
            report.written = await replace_source(pool, source, records)
        await optimize_locations(pool)

    _with_pool(job)
    console.print(report.summary())


@import_app.command("news")
def import_news(
    path: FileArg,
    category: Annotated[str, typer.Option(help="Category of XML feed items ('auto': by keywords).")] = "auto",
    source: Annotated[str | None, typer.Option(help="Source key of XML feed items.")] = None,
) -> None:
    """Import articles from a JSON file or a saved RSS/Atom document."""
    report = ImportReport("news")

    async def job(pool: Pool, _: Settings) -> None:
        articles = read_news_file(path, report, category=category, source=source)
        report.written = await upsert_articles(pool, articles)

    _with_pool(job)
    console.print(report.summary())


@import_app.command("feeds")
def import_feeds(
    every: Annotated[
        float | None, typer.Option(help="Keep collecting, every this many seconds.")
    ] = None,
) -> None:
    """Collect the RSS/Atom feeds of ECO2_NEWS_FEEDS once (or forever with --every)."""

    async def job(pool: Pool, settings: Settings) -> None:
        feeds = feed_sources(settings.news_feeds)
        if not feeds:
            console.print("no feeds configured (ECO2_NEWS_FEEDS)")
            return
        async with HttpFeedFetcher(timeout_s=settings.news_timeout_s) as fetcher:
            while True:
                result = await collect_into(pool, fetcher, feeds)
                console.print(f"collected {len(result.articles)} articles from {len(feeds)} feeds")
                for url, error in result.errors.items():
                    console.print(f"[yellow]{url}: {error}[/yellow]")
                if every is None:
                    return
                await asyncio.sleep(every)

    _with_pool(job)


@import_app.command("samples")
def import_samples(
    force: Annotated[bool, typer.Option(help="Load even when locations already exist.")] = False,
) -> None:
    """Load the shipped SAMPLE data (synthetic Seoul drop-off points, example news)."""

    async def job(pool: Pool, _: Settings) -> None:
        loaded = await load_samples(pool, only_if_empty=not force)
        if loaded.skipped:
            console.print("locations already present; nothing loaded (use --force)")
        for report in loaded.reports:
            console.print(f"SAMPLE {report.summary()}")

    _with_pool(job)
