"""The projectors' floor for trimming the hot log: the lowest checkpoint of any active table
version on a shard. A projection that has no checkpoint row on a shard yet (it never ran there)
does not hold trimming back: it starts at position 0, which merged reads serve from the archive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from readmodels.db import Pool


async def projector_floor(pool: Pool, shard: int) -> int | None:
    """The lowest live projector checkpoint on ``shard`` (None: no projector has one)."""
    try:
        async with pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT min(c.position) FROM checkpoints c JOIN projections p"
                " ON p.name = c.projection AND c.suffix = 'v' || p.active_version"
                " WHERE c.shard = $1",
                shard,
            )
    except asyncpg.UndefinedTableError:
        return None  # the read side was never migrated here: no projector to wait for
    return None if value is None else int(value)
