"""Table versions of each projection and the atomic switch of the reader views.

``projections.active_version`` says which ``<model>_v<k>`` tables the views point at. A rebuild
creates version ``k+1`` (state ``building``), fills it, then calls ``activate`` inside one
transaction: the views are replaced and the registry row updated together, so a reader sees
either the old complete model or the new complete one, never an empty or partial one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from readmodels.tables import TableGroup

if TYPE_CHECKING:
    from readmodels.db import Conn


@dataclass(frozen=True)
class VersionInfo:
    name: str
    version: int
    code_version: int
    state: str
    created_at: datetime
    activated_at: datetime | None

    @property
    def suffix(self) -> str:
        return f"v{self.version}"


def suffix_of(version: int) -> str:
    """The table suffix of table version ``version``."""
    return f"v{version}"


async def active_version(conn: Conn, name: str) -> int | None:
    """The version readers currently see, or None before the first ``activate``."""
    value = await conn.fetchval("SELECT active_version FROM projections WHERE name = $1", name)
    return None if value is None else int(value)


async def lock_active_version(conn: Conn, name: str) -> int | None:
    """Like ``active_version`` but holds the registry row until the transaction ends.

    Live projector batches take this row ``FOR SHARE``; a switch takes it ``FOR UPDATE``, which
    waits for in-flight batches and holds new ones back until the views point elsewhere.
    """
    value = await conn.fetchval(
        "SELECT active_version FROM projections WHERE name = $1 FOR UPDATE", name
    )
    return None if value is None else int(value)


async def create_version(conn: Conn, group: TableGroup, code_version: int) -> int:
    """Create empty tables for the next version of ``group`` (state ``building``)."""
    async with conn.transaction():
        # Versions are never reused, so a stale checkpoint can never match a new table.
        version = int(
            await conn.fetchval(
                "SELECT coalesce(max(version), 0) + 1 FROM projection_versions WHERE name = $1",
                group.name,
            )
        )
        await conn.execute(
            "INSERT INTO projection_versions (name, version, code_version, state)"
            " VALUES ($1, $2, $3, 'building')",
            group.name,
            version,
            code_version,
        )
        await create_tables(conn, group, suffix_of(version))
    return version


async def create_tables(conn: Conn, group: TableGroup, suffix: str) -> None:
    for spec in group.tables:
        for statement in spec.create_sql(suffix):
            await conn.execute(statement)


async def drop_tables(conn: Conn, group: TableGroup, suffix: str) -> None:
    for spec in group.tables:
        await conn.execute(f"DROP TABLE IF EXISTS {spec.physical(suffix)}")
    await conn.execute(
        "DELETE FROM checkpoints WHERE projection = $1 AND suffix = $2", group.name, suffix
    )


async def activate(conn: Conn, group: TableGroup, version: int) -> int | None:
    """Point the views of ``group`` at ``version`` and mark it active; returns the previous one.

    Must run inside the caller's transaction (which normally already holds the registry row
    through ``lock_active_version``): nothing is visible until it commits.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("activate must run inside a transaction")
    previous = await lock_active_version(conn, group.name)
    suffix = suffix_of(version)
    for spec in group.tables:
        try:
            async with conn.transaction():  # savepoint: a changed column list cannot REPLACE
                await conn.execute(spec.view_sql(suffix))
        except asyncpg.PostgresError:
            await conn.execute(f"DROP VIEW IF EXISTS {spec.name}")
            await conn.execute(spec.view_sql(suffix))
    await conn.execute(
        "INSERT INTO projections (name, active_version) VALUES ($1, $2)"
        " ON CONFLICT (name) DO UPDATE SET active_version = $2, updated_at = now()",
        group.name,
        version,
    )
    await conn.execute(
        "UPDATE projection_versions SET state = 'retired'"
        " WHERE name = $1 AND state = 'active' AND version <> $2",
        group.name,
        version,
    )
    await conn.execute(
        "UPDATE projection_versions SET state = 'active', activated_at = now()"
        " WHERE name = $1 AND version = $2",
        group.name,
        version,
    )
    return previous


async def drop_version(conn: Conn, group: TableGroup, version: int) -> None:
    """Drop the tables of a version readers no longer see (never the active one)."""
    async with conn.transaction():
        if await lock_active_version(conn, group.name) == version:
            raise ValueError(f"{group.name} v{version} is active")
        await drop_tables(conn, group, suffix_of(version))
        await conn.execute(
            "UPDATE projection_versions SET state = 'dropped' WHERE name = $1 AND version = $2",
            group.name,
            version,
        )


async def list_versions(conn: Conn, name: str) -> list[VersionInfo]:
    """Every version of ``name`` ever created, oldest first."""
    rows = await conn.fetch(
        "SELECT name, version, code_version, state, created_at, activated_at"
        " FROM projection_versions WHERE name = $1 ORDER BY version",
        name,
    )
    return [VersionInfo(**dict(row)) for row in rows]
