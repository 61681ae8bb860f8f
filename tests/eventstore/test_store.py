"""The event store contract (``store_contract``) on each adapter: real Redis (a single node and
a Redis Cluster, see ``conftest``) and the in-memory twin."""

from __future__ import annotations

from typing import cast

import pytest
import redis.asyncio as aioredis

from eventstore.keys import Layout
from eventstore.memory import MemoryEventStore
from eventstore.port import EventStorePort
from eventstore.store import EventStore
from tests.eventstore.messages import test_registry
from tests.eventstore.store_contract import EventStoreContract


@pytest.mark.redis
class TestRedisEventStore(EventStoreContract):
    @pytest.fixture(autouse=True)
    def _redis(self, redis_client: aioredis.Redis, layout: Layout) -> None:
        self.redis, self.layout = redis_client, layout

    def create_store(self) -> EventStore:
        return EventStore(self.redis, self.layout, test_registry)

    async def commands_written(self, store: EventStorePort, shard: int) -> int:
        return int(await self.redis.xlen(self.layout.keys(shard).commands))

    async def document(self, store: EventStorePort, aggregate_id: str, role: str) -> str | None:
        key = self.layout.keys_for(aggregate_id).document(role, aggregate_id)
        assert await self.redis.ttl(key) > 0 or not await self.redis.exists(key)
        return cast(str | None, await self.redis.get(key))


class TestMemoryEventStore(EventStoreContract):
    def create_store(self) -> MemoryEventStore:
        return MemoryEventStore(Layout(namespace="memory", shards=4), test_registry)

    async def commands_written(self, store: EventStorePort, shard: int) -> int:
        assert isinstance(store, MemoryEventStore)
        return len(store.read_commands(shard))

    async def document(self, store: EventStorePort, aggregate_id: str, role: str) -> str | None:
        assert isinstance(store, MemoryEventStore)
        return store.document(aggregate_id, role)
