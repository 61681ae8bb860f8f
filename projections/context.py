"""What the read-side runtime needs, gathered from the bootstrap's ``Resources``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import schemas
from eventstore.archive import Archive
from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis
from schemas.registry import MessageRegistry

if TYPE_CHECKING:
    from infra.bootstrap import Resources
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

    @classmethod
    def from_resources(cls, resources: Resources) -> ReadSide:
        settings = resources.settings
        if resources.pg is None or settings.database_url is None:
            raise RuntimeError("DATABASE_URL is not resolved (start embedded services first)")
        return cls(
            pool=resources.pg,
            dsn=settings.database_url,
            schema=settings.db_schema,
            redis=resources.redis,
            layout=resources.layout,
            registry=schemas.registry,
            redis_url=settings.redis_url,
        )
