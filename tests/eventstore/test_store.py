"""The event store contract (``store_contract``) on each adapter: real Redis (a single node and
a Redis Cluster, see ``conftest``) and the in-memory twin."""

from __future__ import annotations

from typing import cast

import pytest
import redis.asyncio as aioredis

from eventstore.keys import Layout
from eventstore.memory import MemoryEventStore
from eventstore.port import EventStorePort
from eventstore.snapshots import SNAPSHOT_TTL_S, Snapshot
from eventstore.store import EventStore
from tests.eventstore.messages import test_registry
from tests.eventstore.store_contract import EventStoreContract, added


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

    async def plant_snapshot_entry(
        self, store: EventStorePort, aggregate_id: str, version: int, fields: dict[str, str]
    ) -> None:
        key = self.layout.keys_for(aggregate_id).snapshots(aggregate_id)
        await self.redis.xadd(key, fields, id=f"{version}-1", maxlen=1)


    async def test_a_snapshot_stream_keeps_one_entry_and_expires(self) -> None:
        store = self.create_store()
        agg = "cart-1"
        await store.append([added(agg, str(n)) for n in range(3)], expected_version=0)
        for version in (1, 3):
            assert await store.save_snapshot(Snapshot(agg, version, "cart.state", 1, "{}"))
        key = self.layout.keys_for(agg).snapshots(agg)
        assert await self.redis.xlen(key) == 1
        assert 0 < await self.redis.ttl(key) <= SNAPSHOT_TTL_S
        for _ in range(2):  # replaced at its version: still one entry, one id after the other
            assert await store.save_snapshot(Snapshot(agg, 3, "cart.state", 2, "{}"),
                                             replacing=True)
        assert [entry_id for entry_id, _ in await self.redis.xrange(key)] == ["3-3"]

    async def test_reading_a_snapshot_renews_its_expiry(self) -> None:
        """A snapshot in use is kept: a user loaded less often than it is rewritten does not
        lose it every ``SNAPSHOT_TTL_S``."""
        store = self.create_store()
        agg, unknown = "cart-2", "cart-3"
        await store.append([added(agg, str(n)) for n in range(3)], expected_version=0)
        assert await store.save_snapshot(Snapshot(agg, 3, "cart.state", 1, "{}"))
        key = self.layout.keys_for(agg).snapshots(agg)
        await self.redis.expire(key, 60)  # written long ago
        assert (await store.read_from_snapshot(agg)).after == 3
        assert SNAPSHOT_TTL_S - 60 < await self.redis.ttl(key) <= SNAPSHOT_TTL_S
        await self.redis.expire(key, SNAPSHOT_TTL_S - 3600)  # renewed an hour ago: left alone
        assert (await store.read_from_snapshot(agg)).after == 3
        assert await self.redis.ttl(key) <= SNAPSHOT_TTL_S - 3600
        assert (await store.read_from_snapshot(unknown)).snapshot is None
        assert not await self.redis.exists(self.layout.keys_for(unknown).snapshots(unknown))


class TestMemoryEventStore(EventStoreContract):
    def create_store(self) -> MemoryEventStore:
        return MemoryEventStore(Layout(namespace="memory", shards=4), test_registry)

    async def commands_written(self, store: EventStorePort, shard: int) -> int:
        assert isinstance(store, MemoryEventStore)
        return len(store.read_commands(shard))

    async def document(self, store: EventStorePort, aggregate_id: str, role: str) -> str | None:
        assert isinstance(store, MemoryEventStore)
        return store.document(aggregate_id, role)

    async def plant_snapshot_entry(
        self, store: EventStorePort, aggregate_id: str, version: int, fields: dict[str, str]
    ) -> None:
        assert isinstance(store, MemoryEventStore)
        assert store.put_snapshot_entry(aggregate_id, version, fields)
