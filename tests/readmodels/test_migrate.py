"""Migrations are idempotent and concurrent-safe; views switch table versions atomically."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from projections.builtin import PROJECTIONS
from readmodels import versions
from readmodels.catalog import FALLBACK_CHARACTERS, seed_catalog
from readmodels.db import create_pool
from readmodels.migrate import migrate, migration_files
from readmodels.queries import catalog
from readmodels.tables import GROUPS, SCANS
from tests.readmodels.pg import migrated_pool, new_schema

pytestmark = pytest.mark.postgres


async def test_migrate_twice_applies_nothing_the_second_time(pool: asyncpg.Pool) -> None:
    assert await migrate(pool) == []
    async with pool.acquire() as conn:
        applied = [r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")]
        assert sorted(applied) == [name for name, _ in migration_files()]
        for group in GROUPS.values():
            assert await versions.active_version(conn, group.name) == 1
            for spec in group.tables:
                kind = await conn.fetchval(
                    "SELECT table_type FROM information_schema.tables"
                    " WHERE table_schema = current_schema() AND table_name = $1",
                    spec.name,
                )
                assert kind == "VIEW"


async def test_first_tables_are_built_by_the_code_version_of_their_projection(
    pool: asyncpg.Pool,
) -> None:
    # Otherwise a fresh deployment's projectors would refuse its tables as stale.
    async with pool.acquire() as conn:
        for projection in PROJECTIONS.values():
            built_by = await conn.fetchval(
                "SELECT code_version FROM projection_versions WHERE name = $1 AND version = 1",
                projection.name,
            )
            assert built_by == projection.version == projection.group.code_version


async def test_concurrent_migrations_serialise(database_url: str) -> None:
    schema = new_schema()
    pools = [await create_pool(database_url, schema) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(p) for p in pools))
        assert sum(len(r) for r in results) == len(migration_files()) + len(GROUPS)
    finally:
        for p in pools:
            await p.close()
        async with migrated_pool(database_url, schema):
            pass  # drops the schema


async def test_activate_switches_the_view_in_one_transaction(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO scans_v1 (job_id, user_id) VALUES ('old', 'u')")
        version = await versions.create_version(conn, SCANS, code_version=1)
        assert version == 2
        await conn.execute("INSERT INTO scans_v2 (job_id, user_id) VALUES ('new', 'u')")
        async with pool.acquire() as other:
            async with conn.transaction():
                assert await versions.activate(conn, SCANS, version) == 1
                # A reader during the switch waits for it: it never sees a half-switched model.
                read = asyncio.create_task(other.fetchval("SELECT job_id FROM scans"))
                await asyncio.sleep(0.2)
                assert not read.done()
            assert await read == "new"
        assert await conn.fetchval("SELECT job_id FROM scans") == "new"
        states = {v.version: v.state for v in await versions.list_versions(conn, "scans")}
        assert states == {1: "retired", 2: "active"}
        await versions.drop_version(conn, SCANS, 1)
        with pytest.raises(ValueError):
            await versions.drop_version(conn, SCANS, 2)


async def test_catalog_seed_is_idempotent(pool: asyncpg.Pool) -> None:
    assert await seed_catalog(pool, FALLBACK_CHARACTERS) == 13
    assert await seed_catalog(pool) == 13
    characters = await catalog(pool)
    assert len(characters) == 13
    assert characters[0].name == "이코" and characters[0].is_default
    assert {c.match_label for c in characters[1:]} == {
        "종이", "종이팩", "무색페트병", "플라스틱류", "비닐류", "발포합성수지", "유리병",
        "금속류", "의류및원단", "전지", "조명제품", "전기전자제품",
    }
