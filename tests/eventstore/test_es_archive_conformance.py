"""eventsourcing's conformance suites again, with a hot window of zero: an archiver runs beside
every recorder (retention 0, a cycle every few milliseconds), so what a test reads back has
mostly left Redis and comes from the archive in Postgres — and the suites still pass."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
import uuid
from typing import Any

import asyncpg
import pytest
from eventsourcing.tests.application import ExampleApplicationTestCase
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    ProcessRecorderTestCase,
)

from eventstore.archiver import ArchiverOptions, ArchiverService
from eventstore.es.recorders import RedisAggregateRecorder, RedisApplicationRecorder
from eventstore.es.tracking import RedisProcessRecorder
from eventstore.keys import Layout
from eventstore.redis_client import open_redis, open_redis_sync
from eventstore.trim import RetentionPolicy
from tests.eventstore.test_es_conformance import (
    FreshNamespaces,
    OnCluster,
    PersistenceModuleInEnviron,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
ZERO = RetentionPolicy(hot_retention_s=0, idempotency_window_s=0)



class BackgroundArchiver:
    """An ``ArchiverService`` for one namespace, on its own event loop thread."""

    def __init__(self, namespace: str, schema: str, redis_url: str) -> None:
        self.namespace, self.schema, self.redis_url = namespace, schema, redis_url
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._main, daemon=True)
        self.thread.start()
        assert self.ready.wait(20)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        redis = await open_redis(self.redis_url, decode_responses=True)
        pool = await asyncpg.create_pool(
            DATABASE_URL, min_size=0, max_size=4, server_settings={"search_path": self.schema}
        )
        service = ArchiverService(
            redis, pool, DATABASE_URL, self.schema, Layout(self.namespace, 4), ZERO,
            options=ArchiverOptions(interval_s=0.005, lease_retry_s=0.05),
        )
        self.task = asyncio.current_task()
        self.ready.set()
        try:
            await service.run()
        except asyncio.CancelledError:
            pass
        finally:
            pool.terminate()
            await redis.aclose()

    def wait_trimmed(self, timeout: float = 20.0) -> None:
        """Wait until Redis holds none of the shard logs' entries: the window really is 0."""
        client = open_redis_sync(self.redis_url)
        try:
            deadline = time.monotonic() + timeout
            for keys in Layout(self.namespace, 4).all():
                while client.xlen(keys.events):
                    assert time.monotonic() < deadline, f"{keys.events} was not trimmed"
                    time.sleep(0.02)
                assert int(client.get(keys.floor) or 0) == int(client.get(keys.head) or 0)
        finally:
            client.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.task.cancel)  # type: ignore[union-attr]
        self.thread.join(30)
        assert not self.thread.is_alive(), "the archiver did not stop"
        self.loop.close()


async def _drop(schema: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


class ArchivedNamespaces(FreshNamespaces):
    """Every factory gets a schema for its archive and an archiver with a zero hot window."""

    def setUp(self) -> None:
        self.archivers: list[BackgroundArchiver] = []
        super().setUp()

    def tearDown(self) -> None:
        try:
            for archiver in self.archivers:  # before the namespace's keys are deleted
                archiver.wait_trimmed()
                archiver.stop()
        finally:
            super().tearDown()
            for archiver in self.archivers:
                asyncio.run(_drop(archiver.schema))

    def new_factory(self, **env: str) -> Any:
        schema = f"t_{uuid.uuid4().hex[:12]}"
        asyncio.run(_create(schema))
        factory = super().new_factory(DATABASE_URL=DATABASE_URL, ECO2_DB_SCHEMA=schema, **env)
        self.archivers.append(BackgroundArchiver(self.namespaces[-1], schema, self.redis_url()))
        return factory


async def _create(schema: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    finally:
        await conn.close()


class TestArchivedAggregateRecorder(ArchivedNamespaces, AggregateRecorderTestCase):
    def create_recorder(self) -> RedisAggregateRecorder:
        recorder = self.new_factory().aggregate_recorder()
        assert isinstance(recorder, RedisAggregateRecorder)
        return recorder


class TestArchivedApplicationRecorder(
    ArchivedNamespaces, ApplicationRecorderTestCase[RedisApplicationRecorder]
):
    def create_recorder(self) -> RedisApplicationRecorder:
        recorder = self.new_factory().application_recorder()
        assert isinstance(recorder, RedisApplicationRecorder)
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestArchivedProcessRecorder(ArchivedNamespaces, ProcessRecorderTestCase):
    def create_recorder(self) -> RedisProcessRecorder:
        recorder = self.new_factory().process_recorder()
        assert isinstance(recorder, RedisProcessRecorder)
        return recorder


class TestArchivedExampleApplication(ArchivedNamespaces, PersistenceModuleInEnviron,
                                     ExampleApplicationTestCase):
    """The bank-account application loads aggregates whose events left Redis."""

    expected_factory_topic = "eventstore.es.persistence:RedisFactory"

    def setUp(self) -> None:
        super().setUp()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        asyncio.run(_create(schema))
        self.saved_env.update({k: os.environ.get(k) for k in ("ECO2_DB_SCHEMA",)})
        os.environ["ECO2_DB_SCHEMA"] = schema
        os.environ["DATABASE_URL"] = DATABASE_URL
        self.archivers.append(
            BackgroundArchiver(os.environ["ECO2_NAMESPACE"], schema, self.redis_url())
        )


class TestArchivedAggregateRecorderOnCluster(OnCluster, TestArchivedAggregateRecorder):
    pass


class TestArchivedApplicationRecorderOnCluster(OnCluster, TestArchivedApplicationRecorder):
    pass


class TestArchivedProcessRecorderOnCluster(OnCluster, TestArchivedProcessRecorder):
    pass


class TestArchivedExampleApplicationOnCluster(OnCluster, TestArchivedExampleApplication):
    pass


with contextlib.suppress(NameError):
    del AggregateRecorderTestCase
    del ApplicationRecorderTestCase
    del ExampleApplicationTestCase
    del ProcessRecorderTestCase
