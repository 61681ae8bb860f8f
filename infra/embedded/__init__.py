"""Embedded Redis and PostgreSQL for one-machine runs and tests (data under ``data_dir``)."""

from __future__ import annotations

from infra.embedded._process import EmbeddedServiceError
from infra.embedded.postgres_server import EmbeddedPostgres, find_postgres_bin
from infra.embedded.redis_server import EmbeddedRedis, find_redis_server
from infra.embedded.services import resolve_services

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "EmbeddedServiceError",
    "find_postgres_bin",
    "find_redis_server",
    "resolve_services",
]
