"""``eco2 projections list | status | rebuild | verify`` end to end (settings from the env)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

import schemas
from eventstore.keys import Layout
from eventstore.store import EventStore
from infra.cli_projections import projections_app
from projections.builtin import get_projection
from projections.context import ReadSide
from projections.replay import heads, replay
from projections.synthetic import SyntheticLog
from readmodels.db import create_pool, quote_ident
from readmodels.migrate import migrate
from tests.projections.helpers import load
from tests.readmodels.pg import new_schema

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def test_cli_verify_fails_on_a_difference_and_rebuild_repairs_it(
    redis_url: str, database_url: str, layout: Layout, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    schema = new_schema()
    for name, value in {
        "REDIS_URL": redis_url, "DATABASE_URL": database_url, "ECO2_NAMESPACE": layout.namespace,
        "ECO2_SHARDS": str(layout.shards), "ECO2_DB_SCHEMA": schema,
        "ECO2_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)

    async def prepare() -> None:
        redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        pool = await create_pool(database_url, schema)
        await migrate(pool)
        await load(EventStore(redis, layout, schemas.registry), SyntheticLog(schemas.registry), 50)
        side = ReadSide(pool, database_url, schema, redis, layout, schemas.registry)
        await replay(side, get_projection("scans"), "v1", await heads(side))
        await pool.close()
        await redis.aclose()

    async def sql(statement: str) -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    runner = CliRunner()
    try:
        asyncio.run(prepare())
        result = runner.invoke(projections_app, ["list"])
        assert result.exit_code == 0 and "scans" in result.output

        result = runner.invoke(projections_app, ["verify", "scans"])
        assert result.exit_code == 0, result.output
        assert "same" in result.output

        asyncio.run(sql(f"UPDATE {quote_ident(schema)}.scans_v1 SET status = 'lost'"))
        result = runner.invoke(projections_app, ["verify", "scans"])
        assert result.exit_code == 1, result.output
        assert "DIFFERENT" in result.output

        result = runner.invoke(projections_app, ["rebuild", "scans"])
        assert result.exit_code == 0, result.output
        assert "v1 → v2" in result.output

        result = runner.invoke(projections_app, ["verify", "scans"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(projections_app, ["status"])
        assert result.exit_code == 0, result.output
        assert "v2" in result.output
    finally:
        asyncio.run(sql(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE"))
