"""Shared fixtures: real Redis and Postgres, one throwaway namespace/schema per test.

Tests read ``REDIS_URL`` / ``DATABASE_URL``. When one is unset they use the local server on its
standard port if one answers, else start an embedded one for the session (``infra.embedded``)
and export its URL, so subprocesses agree. Every test gets its own key namespace (Redis) or
schema (Postgres), so runs never collide.
"""

from __future__ import annotations

import atexit
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis, open_redis


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _resolve_services() -> tuple[str, str]:
    redis_url = os.environ.get("REDIS_URL")
    database_url = os.environ.get("DATABASE_URL")
    if redis_url is None and _answers(6379):
        redis_url = "redis://127.0.0.1:6379/0"
    if database_url is None and _answers(5432):
        database_url = "postgresql://postgres@127.0.0.1:5432/test"
    if redis_url is None or database_url is None:
        from infra.embedded import EmbeddedPostgres, EmbeddedRedis
        from infra.settings import Settings

        settings = Settings.from_env({}).with_(data_dir=Path(tempfile.mkdtemp(prefix="eco2-test-")))
        if redis_url is None:
            redis_server = EmbeddedRedis(settings)
            redis_url = redis_server.__enter__()
            atexit.register(redis_server.stop)
        if database_url is None:
            pg_server = EmbeddedPostgres(settings)
            database_url = pg_server.__enter__()
            atexit.register(pg_server.stop)
    os.environ["REDIS_URL"], os.environ["DATABASE_URL"] = redis_url, database_url
    return redis_url, database_url


REDIS_URL, DATABASE_URL = _resolve_services()


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh key namespace; its keys are deleted afterwards."""
    ns = f"t{uuid.uuid4().hex[:12]}"
    yield ns
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{{{ns}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def layout(namespace: str) -> Layout:
    return Layout(namespace=namespace, shards=4)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[AsyncRedis]:
    client = await open_redis(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """A node of the session's local Redis Cluster (started on first use)."""
    from tests.redis_cluster import cluster_url

    return cluster_url()


# Tests of the log run on a single node and on a Redis Cluster: a module opts in with
# ``redis_url = redis_targets`` (the parametrised fixture below replaces ``redis_url``).
@pytest.fixture(params=["node", "cluster"])
def redis_targets(request: pytest.FixtureRequest) -> str:
    if request.param == "node":
        return REDIS_URL
    return str(request.getfixturevalue("redis_cluster_url"))
