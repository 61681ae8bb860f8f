"""Leases: one active owner per (projection, shard) through Postgres advisory locks.

The locks are session-level and held on one dedicated connection per process, so they live
exactly as long as that session: a process that dies (or loses its connection) frees every
lease it held, and another process's next attempt takes them over.

Each session also holds one *membership* lock (two-key form ``(class, n)``), so every process
can count the live members in ``pg_locks`` and aim for its fair share of the leases.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from readmodels.db import advisory_key, connect

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_S = 5.0


MAX_MEMBERS = 1024


def lease_key(schema: str, projection: str, shard: int) -> int:
    """The advisory-lock key of (projection, shard) in ``schema`` (stable across processes)."""
    return advisory_key("eco2-projector", schema, projection, shard)


def member_class(schema: str) -> int:
    """The first key of the membership locks of ``schema``'s projector processes (int4 > 0)."""
    return advisory_key("eco2-projector-members", schema) & 0x7FFFFFFF


class LeaseHolder:
    """Try-acquire and release advisory locks on one dedicated connection."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn = dsn
        self.schema = schema
        self._conn: asyncpg.Connection[asyncpg.Record] | None = None
        self.held: set[int] = set()
        self.sessions = 0  # incremented on every (re)connect: leases of older sessions are gone
        self.member: int | None = None

    async def check(self) -> bool:
        """True if the lock session is alive (reconnecting when needed; leases then start empty).

        Never raises for connection problems: the caller backs off and asks again.
        """
        if self._conn is not None and not self._conn.is_closed():
            try:
                await self._conn.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT_S)
                return True
            except Exception as exc:  # OSError, TimeoutError, several asyncpg classes
                log.warning("lease connection lost: %s", exc)
            await self._drop()
        try:
            self._conn = await connect(self.dsn, self.schema, application="eco2-leases")
            self.member = await self._join(self._conn)
        except Exception as exc:
            log.warning("cannot open the lease connection: %s", exc)
            await self._drop()
            return False
        self.held.clear()
        self.sessions += 1
        return True

    async def _join(self, conn: asyncpg.Connection[asyncpg.Record]) -> int:
        cls = member_class(self.schema)
        for n in range(MAX_MEMBERS):
            if await conn.fetchval("SELECT pg_try_advisory_lock($1::int4, $2::int4)", cls, n):
                return n
        raise RuntimeError(f"more than {MAX_MEMBERS} projector processes")

    async def members(self) -> int:
        """How many projector processes (lock sessions) serve this schema right now."""
        if self._conn is None:
            return 1
        count = await self._conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND objsubid = 2 AND classid = $1::int4::oid"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            member_class(self.schema),
        )
        return max(int(count), 1)

    async def try_acquire(self, key: int) -> bool:
        """Take the lease ``key`` if nobody holds it (never waits)."""
        if self._conn is None:
            return False
        if key in self.held:
            return True
        got = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", key))
        if got:
            self.held.add(key)
        return got

    async def release(self, key: int) -> None:
        if self._conn is None or key not in self.held:
            return
        self.held.discard(key)
        with contextlib.suppress(Exception):
            await self._conn.fetchval("SELECT pg_advisory_unlock($1)", key)

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self.held.clear()
        self.member = None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        """Close the session: every lease is released at once."""
        conn, self._conn = self._conn, None
        self.held.clear()
        self.member = None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), HEALTH_TIMEOUT_S)
            if not conn.is_closed():
                conn.terminate()
