"""What the read-side runtime needs (the composition root builds it from its resources)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from eventstore.archive import Archive
from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis
from schemas.registry import MessageRegistry

if TYPE_CHECKING:
    from readmodels.db import Pool


@dataclass(frozen=True)
class ReadSide:
    """Postgres (pool, plus the DSN for dedicated lock connections) and the log to read."""

    pool: Pool
    dsn: str
    schema: str
    redis: AsyncRedis
    layout: Layout
    registry: MessageRegistry
    redis_url: str | None = None  # lets a rebuild start worker processes (see ``parallel``)

    @property
    def archive(self) -> Archive:
        """The log's archive tier (same database and schema as the read models)."""
        return Archive(self.pool)
