"""Postgres connections for the read side: every connection works in one schema.

The schema (``ECO2_DB_SCHEMA``; tests use their own) is set as the connection's
``search_path``, so all SQL of ``readmodels`` and ``projections`` names tables unqualified.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]
    Pool: TypeAlias = asyncpg.Pool[asyncpg.Record]

CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 120.0


def quote_ident(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _server_settings(schema: str, application: str) -> dict[str, str]:
    return {"search_path": quote_ident(schema), "application_name": application}


async def create_pool(
    dsn: str, schema: str, *, max_size: int = 16, application: str = "eco2", **kwargs: Any
) -> Pool:
    """A pool whose connections use ``schema``. ``min_size=0``: nothing connects until used,
    so a process starts (and backs off) while Postgres is still down."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=max_size,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=COMMAND_TIMEOUT_S,
        server_settings=_server_settings(schema, application),
        **kwargs,
    )
    return pool


async def connect(dsn: str, schema: str, *, application: str = "eco2") -> asyncpg.Connection[
    asyncpg.Record
]:
    """One dedicated connection (e.g. the one that holds advisory locks)."""
    conn: asyncpg.Connection[asyncpg.Record] = await asyncpg.connect(
        dsn,
        timeout=CONNECT_TIMEOUT_S,
        command_timeout=COMMAND_TIMEOUT_S,
        server_settings=_server_settings(schema, application),
    )
    return conn


async def schema_of(conn: Conn) -> str:
    """The schema the connection creates tables in (first entry of its search_path)."""
    path = str(await conn.fetchval("SELECT current_setting('search_path')"))
    for entry in path.split(","):
        name = entry.strip()
        if name and name != '"$user"':
            return name[1:-1].replace('""', '"') if name.startswith('"') else name
    return "public"


def advisory_key(*parts: object) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (same in every process)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
