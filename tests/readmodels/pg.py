"""Postgres helpers shared by the read-side tests: a throwaway schema per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from readmodels.db import create_pool, quote_ident
from readmodels.migrate import migrate


def new_schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def migrated_pool(dsn: str, schema: str | None = None) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh, migrated schema; the schema is dropped afterwards."""
    schema = schema or new_schema()
    pool = await create_pool(dsn, schema, max_size=24)
    try:
        await migrate(pool)
        yield pool
    finally:
        await pool.close()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        finally:
            await conn.close()
