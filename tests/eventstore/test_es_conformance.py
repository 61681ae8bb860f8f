"""eventsourcing's own conformance suites, run against ``eventstore.es.persistence`` on real Redis.

Every ``create_recorder()`` builds a factory on a fresh namespace (so positions start at 1);
``tearDown`` closes the factories and deletes the namespaces' keys.
"""

from __future__ import annotations

import os
import uuid
import warnings
from typing import Any

import pytest
from eventsourcing.tests.application import ApplicationTestCase, ExampleApplicationTestCase
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from eventstore.es.persistence import RedisFactory
from eventstore.es.recorders import RedisAggregateRecorder, RedisApplicationRecorder
from eventstore.es.tracking import RedisProcessRecorder, RedisTrackingRecorder
from tests.conftest import delete_keys
from tests.redis_cluster import cluster_url

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MODULE = "eventstore.es.persistence"


class FreshNamespaces:
    """unittest mixin: factories on throwaway namespaces, cleaned up after each test."""

    namespaces: list[str]
    factories: list[RedisFactory]

    def redis_url(self) -> str:
        return REDIS_URL

    def setUp(self) -> None:
        # Subclasses may have taken a namespace before calling this.
        self.namespaces = getattr(self, "namespaces", [])
        self.factories = []
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        try:
            super().tearDown()  # type: ignore[misc]
        finally:
            for factory in self.factories:
                factory.close()
            for namespace in self.namespaces:
                delete_keys(f"{{{namespace}:*", self.redis_url())

    def new_namespace(self) -> str:
        namespace = f"es{uuid.uuid4().hex[:12]}"
        self.namespaces.append(namespace)
        return namespace

    def new_factory(self, **env: str) -> RedisFactory:
        settings = {
            "PERSISTENCE_MODULE": MODULE,
            "REDIS_URL": self.redis_url(),
            "ECO2_NAMESPACE": self.new_namespace(),
            "ECO2_ES_SHARD": "0",
            **env,
        }
        factory = RedisFactory.construct(settings)
        self.factories.append(factory)
        return factory


class TestAggregateRecorder(FreshNamespaces, AggregateRecorderTestCase):
    def create_recorder(self) -> RedisAggregateRecorder:
        recorder = self.new_factory().aggregate_recorder()
        assert isinstance(recorder, RedisAggregateRecorder)
        return recorder


class TestSnapshotRecorder(FreshNamespaces, AggregateRecorderTestCase):
    def create_recorder(self) -> Any:
        return self.new_factory().aggregate_recorder("snapshots")


class TestApplicationRecorder(
    FreshNamespaces, ApplicationRecorderTestCase[RedisApplicationRecorder]
):
    def create_recorder(self) -> RedisApplicationRecorder:
        recorder = self.new_factory().application_recorder()
        assert isinstance(recorder, RedisApplicationRecorder)
        return recorder

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestNonInterleavingNotificationIDs(FreshNamespaces, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> RedisApplicationRecorder:
        recorder = self.new_factory().application_recorder()
        assert isinstance(recorder, RedisApplicationRecorder)
        return recorder


class TestTrackingRecorder(FreshNamespaces, TrackingRecorderTestCase):
    def create_recorder(self) -> RedisTrackingRecorder:
        return self.new_factory().tracking_recorder()


class TestProcessRecorder(FreshNamespaces, ProcessRecorderTestCase):
    def create_recorder(self) -> RedisProcessRecorder:
        recorder = self.new_factory().process_recorder()
        assert isinstance(recorder, RedisProcessRecorder)
        return recorder


class CustomTrackingRecorder(RedisTrackingRecorder):
    pass


class TestRedisFactory(FreshNamespaces, InfrastructureFactoryTestCase[RedisFactory]):
    def setUp(self) -> None:
        self.namespaces = []
        self.env = Environment("TestCase")
        self.env.update(
            {
                "PERSISTENCE_MODULE": MODULE,
                "REDIS_URL": self.redis_url(),
                "ECO2_NAMESPACE": self.new_namespace(),
            }
        )
        super().setUp()

    def expected_factory_class(self) -> type[RedisFactory]:
        return RedisFactory

    def expected_aggregate_recorder_class(self) -> type[RedisAggregateRecorder]:
        return RedisAggregateRecorder

    def expected_application_recorder_class(self) -> type[RedisApplicationRecorder]:
        return RedisApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[RedisTrackingRecorder]:
        return RedisTrackingRecorder

    def tracking_recorder_subclass(self) -> type[RedisTrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[RedisProcessRecorder]:
        return RedisProcessRecorder


class PersistenceModuleInEnviron(FreshNamespaces):
    """Applications read ``os.environ``: point it at our module and a fresh namespace."""

    def setUp(self) -> None:
        super().setUp()
        names = ("PERSISTENCE_MODULE", "ECO2_NAMESPACE", "REDIS_URL")
        self.saved_env = {k: os.environ.get(k) for k in names}
        os.environ["REDIS_URL"] = self.redis_url()
        os.environ["PERSISTENCE_MODULE"] = MODULE
        os.environ["ECO2_NAMESPACE"] = self.new_namespace()

    def tearDown(self) -> None:
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        super().tearDown()


class TestExampleApplication(PersistenceModuleInEnviron, ExampleApplicationTestCase):
    """The library's bank-account application, configured only through the environment."""

    expected_factory_topic = f"{MODULE}:RedisFactory"


class TestApplication(PersistenceModuleInEnviron, ApplicationTestCase):
    """The library's application tests (caching, 100-thread contention) on our recorders."""

    def test_application_log(self) -> None:
        # The base test records a DeprecationWarning that pyproject's filters would swallow.
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            super().test_application_log()


class OnCluster:
    """The same suite on the session's local Redis Cluster."""

    def redis_url(self) -> str:
        return cluster_url()


class TestAggregateRecorderOnCluster(OnCluster, TestAggregateRecorder):
    pass


class TestSnapshotRecorderOnCluster(OnCluster, TestSnapshotRecorder):
    pass


class TestApplicationRecorderOnCluster(OnCluster, TestApplicationRecorder):
    pass


class TestNonInterleavingNotificationIDsOnCluster(OnCluster, TestNonInterleavingNotificationIDs):
    pass


class TestTrackingRecorderOnCluster(OnCluster, TestTrackingRecorder):
    pass


class TestProcessRecorderOnCluster(OnCluster, TestProcessRecorder):
    pass


class TestRedisFactoryOnCluster(OnCluster, TestRedisFactory):
    pass


class TestExampleApplicationOnCluster(OnCluster, TestExampleApplication):
    pass


class TestApplicationOnCluster(OnCluster, TestApplication):
    pass


del AggregateRecorderTestCase
del ApplicationRecorderTestCase
del ApplicationTestCase
del ExampleApplicationTestCase
del InfrastructureFactoryTestCase
del NonInterleavingNotificationIDsBaseCase
del ProcessRecorderTestCase
del TrackingRecorderTestCase
