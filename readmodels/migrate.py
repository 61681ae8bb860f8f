"""Idempotent schema migrations: the ``*.sql`` files of ``readmodels/migrations``, in name order,
each applied once (recorded in ``schema_migrations``), then version 1 of every read-model group
for groups that have no version yet (tables plus their reader views), recorded as built by
the group's ``code_version``.

Safe to run from several processes at once: a transaction-scoped advisory lock serialises them.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from readmodels import versions
from readmodels.db import advisory_key, quote_ident, schema_of
from readmodels.tables import GROUPS, TableGroup

if TYPE_CHECKING:
    from readmodels.db import Conn, Pool


def migration_files() -> list[tuple[str, str]]:
    """(name, SQL) of every migration shipped with the package, in order."""
    folder = resources.files("readmodels") / "migrations"
    found = [(f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir()]
    return sorted((name, sql) for name, sql in found if name.endswith(".sql"))


async def migrate(pool: Pool, groups: list[TableGroup] | None = None) -> list[str]:
    """Bring the pool's schema up to date; returns the names of what was applied now."""
    async with pool.acquire() as conn:
        return await migrate_connection(conn, groups)


async def migrate_connection(conn: Conn, groups: list[TableGroup] | None = None) -> list[str]:
    schema = await schema_of(conn)
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", advisory_key("eco2-migrate", schema))
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied_now.append(name)
        for group in groups if groups is not None else list(GROUPS.values()):
            if await versions.active_version(conn, group.name) is None:
                version = await versions.create_version(conn, group, group.code_version)
                await versions.activate(conn, group, version)
                applied_now.append(f"{group.name}_v{version}")
    return applied_now
