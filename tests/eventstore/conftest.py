"""Every test of the log runs twice: on a single Redis node and on a Redis Cluster."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from eventstore.keys import Layout
from eventstore.store import EventStore
from tests.eventstore.messages import test_registry


@pytest.fixture
def redis_url(redis_targets: str) -> str:
    return redis_targets


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    """A store of the test messages (``tests.eventstore.messages``)."""
    return EventStore(redis_client, layout, test_registry)
