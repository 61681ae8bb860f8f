"""``eco2 export``: one Parquet/JSONL file per shard and day, typed envelope columns, readable by
DuckDB with the README's query."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import asyncpg
import duckdb
import pyarrow.parquet as pq
import pytest
import redis.asyncio as aioredis

from eventstore.archive import Archive
from eventstore.archiver import archive_now
from eventstore.export import ExportQuery, export
from eventstore.keys import Layout
from eventstore.store import EventStore
from eventstore.trim import RetentionPolicy
from schemas.envelope import Envelope, Metadata
from tests.readmodels.pg import migrated_pool

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

DAY1 = datetime(2026, 11, 30, 12, tzinfo=UTC).timestamp()
DAY2 = datetime(2026, 12, 1, 9, tzinfo=UTC).timestamp()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with migrated_pool(database_url) as pool:
        yield pool


async def archived_store(redis: aioredis.Redis, layout: Layout, pool: asyncpg.Pool) -> EventStore:
    store = EventStore(redis, layout, archive=Archive(pool))
    for i in range(30):
        kind = "scan_completed" if i % 3 == 0 else "stage_started"
        await store.append(
            [Envelope(aggregate_id=f"job-{i % 7}", aggregate_type="scan_job", type=kind,
                      data={"i": i, "text": "페트병"}, metadata=Metadata(user_id=f"u{i % 2}"),
                      timestamp=DAY1 if i < 20 else DAY2)],
            expected_version="any",
        )
    schema = str(await pool.fetchval("SELECT current_schema()"))
    await archive_now(redis, pool, schema, layout, RetentionPolicy(hot_retention_s=0))
    return store


async def test_parquet_files_per_shard_and_day_query_with_duckdb(
    redis_client: aioredis.Redis, layout: Layout, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await archived_store(redis_client, layout, pool)
    files = await export(pool, tmp_path, ExportQuery(), "parquet")
    names = sorted(p.name for p, _ in files)
    assert all(n.startswith("events_s") and n.endswith(".parquet") for n in names)
    assert {n.rsplit("_", 1)[1] for n in names} == {"2026-11-30.parquet", "2026-12-01.parquet"}
    assert sum(n for _, n in files) == 30
    schema = pq.read_schema(files[0][0])
    assert str(schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert str(schema.field("position").type) == "int64"
    # The README's queries.
    rows = duckdb.sql(
        f"SELECT date_trunc('day', ts) AS day, type, count(*) AS events"
        f" FROM read_parquet('{tmp_path}/events_*.parquet') GROUP BY ALL ORDER BY day, type"
    ).fetchall()
    assert [(d.isoformat()[:10], t, n) for d, t, n in rows] == [
        ("2026-11-30", "scan_completed", 7), ("2026-11-30", "stage_started", 13),
        ("2026-12-01", "scan_completed", 3), ("2026-12-01", "stage_started", 7),
    ]
    typed = duckdb.sql(
        f"SELECT count(DISTINCT data::JSON ->> '$.i') FROM read_parquet('{tmp_path}/*.parquet')"
    ).fetchall()
    assert typed == [(30,)]
    users = duckdb.sql(
        f"SELECT metadata::JSON ->> '$.user_id' AS user_id, count(*) AS events"
        f" FROM read_parquet('{tmp_path}/*.parquet') GROUP BY user_id ORDER BY user_id"
    ).fetchall()
    assert users == [("u0", 15), ("u1", 15)]


async def test_jsonl_with_type_and_day_filters(
    redis_client: aioredis.Redis, layout: Layout, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await archived_store(redis_client, layout, pool)
    query = ExportQuery(since=date(2026, 12, 1), until=date(2026, 12, 1), types=("scan_completed",))
    files = await export(pool, tmp_path, query, "jsonl")
    lines = [json.loads(line) for p, _ in files for line in p.read_text().splitlines()]
    assert sorted(r["data"] for r in lines) == sorted(
        json.dumps({"i": i, "text": "페트병"}, ensure_ascii=False, separators=(",", ":"))
        for i in range(20, 30) if i % 3 == 0
    )
    assert all(r["ts"].startswith("2026-12-01") and r["type"] == "scan_completed" for r in lines)
