"""``eco2 bench locations``: nearest-20 over 100,000 drop-off points, indexed vs a full scan.

Points are synthetic but shaped like the national bin datasets: dense clusters around Korean
cities (half of them in the capital area). Queries start near where users are (the same
cities). Each query runs ``readmodels.locations.nearest`` end to end (asyncpg round trips
included); the baseline computes every point's distance and sorts (what a table without a
spatial index must do), over a subset of the same queries, and must return the same ids.
Everything lives in a throwaway schema that is dropped afterwards.

    eco2 bench locations [--points 100000] [--queries 1000] [--baseline-queries 200] [--repeat 3]
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

import asyncpg
import typer

from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    WriteOption,
    check_repeat,
    print_repetition,
    print_summary,
    record,
    summarize,
)
from infra.settings import Settings
from readmodels.db import create_pool, quote_ident
from readmodels.locations import Center, nearest, nearest_full_scan
from readmodels.locations_store import optimize_locations
from readmodels.migrate import migrate

bench_app = typer.Typer(help="Location query benchmark.")

# (lat, lon, share of points, spread in degrees) — capital area first
CITIES = (
    (37.5665, 126.9780, 0.35, 0.08),  # Seoul
    (37.4563, 126.7052, 0.08, 0.06),  # Incheon
    (37.2636, 127.0286, 0.07, 0.06),  # Suwon
    (35.1796, 129.0756, 0.12, 0.07),  # Busan
    (35.8714, 128.6014, 0.08, 0.06),  # Daegu
    (35.1595, 126.8526, 0.06, 0.05),  # Gwangju
    (36.3504, 127.3845, 0.06, 0.05),  # Daejeon
    (35.5384, 129.3114, 0.04, 0.05),  # Ulsan
    (33.4996, 126.5312, 0.03, 0.06),  # Jeju
    (36.6424, 127.4890, 0.03, 0.05),  # Cheongju
)
COLUMNS = ("source", "source_key", "name", "latitude", "longitude", "store_category",
           "pickup_categories")
PICKUPS = (["전지", "조명제품"], ["의류및원단"], ["폐의약품"], ["전지"])


@dataclass(frozen=True)
class Timing:
    label: str
    samples_ms: list[float]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)


def city_point(rng: random.Random) -> tuple[float, float]:
    lat, lon, _, spread = rng.choices(CITIES, weights=[c[2] for c in CITIES])[0]
    return lat + rng.gauss(0, spread), lon + rng.gauss(0, spread * 1.2)


async def load_points(pool: asyncpg.Pool[asyncpg.Record], n: int, rng: random.Random) -> None:
    rows = []
    for i in range(n):
        lat, lon = city_point(rng)
        rows.append(("bench", f"b{i}", f"수거함 {i}", lat, lon, "collection_bin",
                     rng.choice(PICKUPS)))
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("locations", records=rows, columns=COLUMNS)
    await optimize_locations(pool)  # what every import ends with


async def timed(
    label: str, origins: list[tuple[float, float]],
    query: Callable[[float, float], Awaitable[list[Center]]],
) -> tuple[Timing, list[list[int]]]:
    samples, answers = [], []
    for lat, lon in origins:
        started = time.perf_counter()
        found = await query(lat, lon)
        samples.append((time.perf_counter() - started) * 1000)
        answers.append([c.id for c in found])
    return Timing(label, samples), answers


async def run(
    settings: Settings, points: int, queries: int, baseline_queries: int, radius: float,
    limit: int, seed: int,
) -> tuple[list[Timing], str]:
    if settings.database_url is None:
        raise typer.BadParameter("DATABASE_URL is not set")
    schema = f"bench_loc_{uuid.uuid4().hex[:10]}"
    pool = await create_pool(settings.database_url, schema, max_size=2, application="eco2-bench")
    rng = random.Random(seed)
    try:
        await migrate(pool)
        await load_points(pool, points, rng)
        origins = [city_point(rng) for _ in range(queries)]
        for lat, lon in origins[:50]:  # warm the cache and the prepared statements
            await nearest(pool, lat, lon, radius, None, limit)
        indexed, fast = await timed(
            f"nearest-{limit}, r ≤ {radius / 1000:g} km (band index + haversine)", origins,
            lambda lat, lon: nearest(pool, lat, lon, radius, None, limit))
        filtered, _ = await timed(
            f"nearest-{limit}, same, pickup_category=폐건전지", origins,
            lambda lat, lon: nearest(pool, lat, lon, radius, "폐건전지", limit))
        subset = origins[:baseline_queries]
        baseline, slow = await timed(
            f"baseline: full scan ORDER BY haversine ({baseline_queries} of the queries)",
            subset, lambda lat, lon: nearest_full_scan(pool, lat, lon, radius, limit))
        if slow != fast[: len(slow)]:
            raise RuntimeError("the indexed and full-scan answers differ")
        version = str(await pool.fetchval("SHOW server_version"))
        return [indexed, filtered, baseline], version
    finally:
        await pool.close()
        admin = await asyncpg.connect(settings.database_url)
        try:
            await admin.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await admin.close()


@bench_app.command("locations")
def locations_command(
    points: Annotated[int, typer.Option(help="Synthetic drop-off points.")] = 100_000,
    queries: Annotated[int, typer.Option(help="Random nearest queries timed.")] = 1000,
    baseline_queries: Annotated[
        int, typer.Option(help="How many of them the full-scan baseline runs.")
    ] = 200,
    radius: Annotated[float, typer.Option(help="Search radius in metres.")] = 5000,
    limit: Annotated[int, typer.Option(help="Points per answer.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
) -> None:
    """Nearest-N p50/p99 over random queries, with a full-scan baseline in the same run."""
    check_repeat(repeat, write)
    settings = Settings.from_env()
    runs: list[dict[str, float]] = []
    for n in range(1, repeat + 1):
        timings, pg_version = asyncio.run(run(
            settings, points, queries, min(baseline_queries, queries), radius, limit, seed
        ))
        runs.append({f"{name} {q} ms": getattr(t, q) for name, t in zip(
            ("indexed", "indexed + category", "full scan"), timings, strict=True
        ) for q in ("p50", "p99")})
        print_repetition(n, repeat, runs[-1])
    ratios = [("full scan p50 ms", "indexed p50 ms"), ("full scan p99 ms", "indexed p99 ms")]
    spreads = summarize(runs, ratios)
    print_summary("Locations: nearest query", spreads, repeat)
    if write:
        record(output, "Locations: nearest query", (
            f"eco2 bench locations --points {points} --queries {queries} --baseline-queries "
            f"{baseline_queries} --radius {radius:g} --limit {limit} --repeat {repeat}"
        ), spreads, repeat, [
            f"{points:,} points, PostgreSQL {pg_version} (no PostGIS/cube); indexed: "
            f"nearest-{limit} within {radius / 1000:g} km (band index + haversine), with and "
            "without a pickup category; baseline: full scan ORDER BY haversine over "
            f"{min(baseline_queries, queries)} of the same queries, same ids returned",
        ])


if __name__ == "__main__":
    bench_app()
