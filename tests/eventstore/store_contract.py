"""The contract of the event store port (``eventstore.port``), run against every adapter.

A subclass says how to build its store (``create_store``) and how to count the entries of a
shard's command stream (``commands_written``, the one thing the port does not read back).
Atomicity, idempotency, order and gap-freedom are the same on Redis and in memory.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eventstore.errors import ConcurrencyConflict, InvalidAppend, PartialDuplicate
from eventstore.port import EventStorePort
from eventstore.snapshots import Snapshot
from eventstore.store import ANY
from schemas.envelope import Envelope, Metadata
from tests.eventstore.messages import ItemAdded, test_registry


def added(aggregate_id: str, name: str = "x", **kw: object) -> Envelope:
    return test_registry.envelope(
        ItemAdded(name=name), aggregate_id=aggregate_id, aggregate_type="cart", **kw
    )


class EventStoreContract:
    """Subclass as ``Test<Adapter>EventStore`` and implement the two methods below."""

    def create_store(self) -> EventStorePort:
        """A store over an empty log with 4 shards, validating with ``test_registry``."""
        raise NotImplementedError

    async def commands_written(self, store: EventStorePort, shard: int) -> int:
        """How many entries the command stream of ``shard`` holds."""
        raise NotImplementedError

    async def document(self, store: EventStorePort, aggregate_id: str, role: str) -> str | None:
        """The value kept beside ``aggregate_id`` under ``role`` (None: there is none)."""
        raise NotImplementedError

    async def plant_snapshot_entry(
        self, store: EventStorePort, aggregate_id: str, version: int, fields: dict[str, str]
    ) -> None:
        """Store ``fields`` as the aggregate's snapshot entry at ``version``, as another
        release or a damaged write could have left it."""
        raise NotImplementedError

    @pytest.fixture
    def store(self) -> EventStorePort:
        return self.create_store()

    async def test_append_assigns_versions_and_positions(self, store: EventStorePort) -> None:
        agg = str(uuid.uuid4())
        first = await store.append([added(agg, "a"), added(agg, "b")], expected_version=0)
        second = await store.append([added(agg, "c")], expected_version=2)
        assert [r.version for r in first.records + second.records] == [1, 2, 3]
        assert [r.position for r in first.records + second.records] == [1, 2, 3]
        assert {r.shard for r in first.records} == {store.layout.shard_of(agg)}
        events = await store.read_aggregate(agg)
        assert [e.data["name"] for e in events] == ["a", "b", "c"]
        assert [e.version for e in events] == [1, 2, 3]
        assert [e.position for e in events] == [1, 2, 3]
        assert [e.version for e in await store.read_aggregate(agg, after_version=1)] == [2, 3]
        assert await store.version_of(agg) == 3

    async def test_wrong_expected_version_conflicts_and_writes_nothing(
        self, store: EventStorePort
    ) -> None:
        agg = str(uuid.uuid4())
        await store.append([added(agg)], expected_version=0)
        with pytest.raises(ConcurrencyConflict) as info:
            await store.append([added(agg), added(agg)], expected_version=0)
        assert (info.value.aggregate_id, info.value.current, info.value.expected) == (agg, 1, 0)
        assert len(await store.read_aggregate(agg)) == 1
        assert await store.head(store.layout.shard_of(agg)) == 1

    async def test_sixteen_writers_one_winner_per_version(self, store: EventStorePort) -> None:
        agg = str(uuid.uuid4())

        async def writer(n: int) -> list[int]:
            won = []
            for _ in range(20):
                version = await store.version_of(agg)
                try:
                    result = await store.append([added(agg, f"w{n}")], expected_version=version)
                except ConcurrencyConflict:
                    continue
                won.append(result.last_version)
            return won

        wins = await asyncio.gather(*(writer(n) for n in range(16)))
        versions = sorted(v for won in wins for v in won)
        assert versions == list(range(1, len(versions) + 1))  # each version won exactly once
        assert len(versions) >= 20
        events = await store.read_aggregate(agg)
        assert [e.version for e in events] == versions

    async def test_retry_with_same_ids_returns_original_positions(
        self, store: EventStorePort
    ) -> None:
        agg = str(uuid.uuid4())
        events = [added(agg, "a"), added(agg, "b")]
        first = await store.append(events, expected_version=0)
        again = await store.append(events, expected_version=0)  # stale expected: still a retry
        assert again.duplicate and not first.duplicate
        assert again.records == first.records
        assert len(await store.read_aggregate(agg)) == 2
        with pytest.raises(PartialDuplicate):
            await store.append([events[0], added(agg, "new")], expected_version=2)
        assert len(await store.read_aggregate(agg)) == 2

    async def test_positions_contiguous_in_commit_order_under_concurrency(
        self, store: EventStorePort
    ) -> None:
        aggregates = [str(uuid.uuid4()) for _ in range(200)]

        async def writer(mine: list[str]) -> None:
            for agg in mine:
                await store.append([added(agg, "a"), added(agg, "b")], expected_version=0)
                await store.append([added(agg, "c")], expected_version=2)

        await asyncio.gather(*(writer(aggregates[i::8]) for i in range(8)))
        for shard in range(store.layout.shards):
            log = await store.read_shard(shard, limit=10_000)
            assert [e.position for e in log] == list(range(1, len(log) + 1))
            assert {e.shard for e in log} <= {shard}
            assert await store.head(shard) == len(log)
            seen: dict[str, int] = {}
            for e in log:  # within an aggregate, log order is version order
                assert e.version == seen.get(e.aggregate_id, 0) + 1
                seen[e.aggregate_id] = e.version
        assert sum([await store.head(s) for s in range(4)]) == 600

    async def test_invalid_event_rejected_before_any_write(self, store: EventStorePort) -> None:
        agg = str(uuid.uuid4())
        bad = Envelope(aggregate_id=agg, type="test.item_added", data={"quantity": "lots"})
        with pytest.raises(InvalidAppend, match="name"):
            await store.append([added(agg), bad], expected_version=0)
        unknown = Envelope(aggregate_id=agg, type="test.unheard_of", data={})
        with pytest.raises(InvalidAppend, match="unknown message type"):
            await store.append([unknown], expected_version=0)
        with pytest.raises(InvalidAppend):
            await store.append([added(agg), added("other")], expected_version=0)
        with pytest.raises(InvalidAppend):
            await store.append([], expected_version=0)
        with pytest.raises(InvalidAppend):
            await store.append([added(agg)], expected_version=-1)
        one = added(agg)
        with pytest.raises(InvalidAppend):
            await store.append([one, one], expected_version=0)
        assert await store.read_aggregate(agg) == []
        assert await store.head(store.layout.shard_of(agg)) == 0

    async def test_any_version_and_batched_pipeline(self, store: EventStorePort) -> None:
        aggs = [str(uuid.uuid4()) for _ in range(50)]
        results = await store.append_batch([([added(a), added(a)], 0) for a in aggs])
        assert all(r.last_version == 2 for r in results)
        more = await store.append([added(aggs[0])], expected_version=ANY)
        assert more.last_version == 3

    async def test_a_failing_append_of_a_batch_raises_after_the_others(
        self, store: EventStorePort
    ) -> None:
        taken, fresh = str(uuid.uuid4()), str(uuid.uuid4())
        await store.append([added(taken)], expected_version=0)
        with pytest.raises(ConcurrencyConflict):
            await store.append_batch([([added(taken)], 0), ([added(fresh)], 0)])
        assert await store.version_of(taken) == 1
        assert await store.version_of(fresh) == 1

    async def test_reads_return_what_was_appended(self, store: EventStorePort) -> None:
        agg = str(uuid.uuid4())
        assert await store.last_event(agg) is None
        assert await store.version_of(agg) == 0
        meta = Metadata(correlation_id="c-1", user_id="u-1", trace={"traceparent": "00-x"})
        sent = [added(agg, name, metadata=meta) for name in ("a", "b", "c")]
        await store.append(sent, expected_version=0)
        shard = store.layout.shard_of(agg)
        events = await store.read_aggregate(agg)
        assert [(e.id, e.data, e.metadata, e.timestamp, e.type) for e in events] == [
            (s.id, s.data, s.metadata, s.timestamp, s.type) for s in sent
        ]
        assert all(e.aggregate_type == "cart" and e.shard == shard for e in events)
        assert [e.version for e in await store.read_aggregate(agg, limit=2)] == [1, 2]
        last = await store.last_event(agg)
        assert last is not None and (last.version, last.position, last.shard) == (3, 3, shard)
        log = await store.read_shard(shard, after_position=1, limit=1)
        assert [(e.position, e.version, e.data["name"]) for e in log] == [(2, 2, "b")]
        assert await store.read_shard(shard, after_position=3) == []

    async def test_a_shard_outside_the_layout_is_refused(self, store: EventStorePort) -> None:
        with pytest.raises(ValueError, match="outside"):
            await store.head(store.layout.shards)
        with pytest.raises(ValueError, match="outside"):
            await store.read_shard(-1)

    async def test_tail_waits_for_new_entries(self, store: EventStorePort) -> None:
        agg = str(uuid.uuid4())
        shard = store.layout.shard_of(agg)
        tail = store.tail(shard, block_ms=100)

        async def first_batch() -> list[Envelope]:
            return await anext(tail)

        waiting = asyncio.create_task(first_batch())
        await asyncio.sleep(0.05)
        await store.append([added(agg, "late")], expected_version=0)
        batch = await asyncio.wait_for(waiting, 5)
        assert [e.data["name"] for e in batch] == ["late"]
        await tail.aclose()

    async def test_tail_starts_with_the_entries_already_there(
        self, store: EventStorePort
    ) -> None:
        agg = str(uuid.uuid4())
        shard = store.layout.shard_of(agg)
        await store.append([added(agg, n) for n in "abcde"], expected_version=0)
        tail = store.tail(shard, after_position=1, batch=2, block_ms=100)
        batches = [await asyncio.wait_for(anext(tail), 5) for _ in range(2)]
        assert [[e.position for e in b] for b in batches] == [[2, 3], [4, 5]]
        await tail.aclose()

    async def test_command_idempotency_key(self, store: EventStorePort) -> None:
        job = str(uuid.uuid4())
        cmd = Envelope(aggregate_id=job, type="test.noop", data={})
        first = await store.append_command(cmd, idempotency_key="k1")
        again = await store.append_command(
            Envelope(aggregate_id=job, type="test.noop", data={}), idempotency_key="k1"
        )
        assert again.duplicate and not first.duplicate and again.entry_id == first.entry_id
        assert again.command_id == str(cmd.id) and again.aggregate_id == job
        shard = store.layout.shard_of(job)
        assert first.shard == again.shard == shard
        assert await self.commands_written(store, shard) == 1
        other = await store.append_command(Envelope(aggregate_id=job, type="test.noop", data={}))
        assert not other.duplicate and other.entry_id != first.entry_id
        assert await self.commands_written(store, shard) == 2
        with pytest.raises(InvalidAppend):
            await store.append_command(Envelope(aggregate_id=job, type="test.unheard_of"))

    async def test_command_with_a_document_beside_its_aggregate(
        self, store: EventStorePort
    ) -> None:
        job = str(uuid.uuid4())
        first = await store.append_command(
            Envelope(aggregate_id=job, type="test.noop", data={}), idempotency_key="k2",
            document=("owner", "alice"),
        )
        assert not first.duplicate
        assert await self.document(store, job, "owner") == "alice"
        again = await store.append_command(
            Envelope(aggregate_id=job, type="test.noop", data={}), idempotency_key="k2",
            document=("owner", "alice"),
        )
        assert again.duplicate and again.entry_id == first.entry_id
        assert await self.commands_written(store, store.layout.shard_of(job)) == 1
        assert await self.document(store, job, "owner") == "alice"
        assert await self.document(store, str(uuid.uuid4()), "owner") is None

    async def test_a_snapshot_is_kept_outside_the_log_and_read_with_the_events_after_it(
        self, store: EventStorePort
    ) -> None:
        agg = str(uuid.uuid4())
        await store.append([added(agg, n) for n in "abcd"], expected_version=0)
        head = await store.head(store.layout.shard_of(agg))
        none = await store.read_from_snapshot(agg)
        assert (none.snapshot, none.after, none.archived) == (None, 0, False)
        assert [e.data["name"] for e in none.events] == ["a", "b", "c", "d"]
        at2 = Snapshot(agg, 2, "cart.state", 1, '{"names": "ab"}')
        assert await store.save_snapshot(at2)
        read = await store.read_from_snapshot(agg)
        assert (read.snapshot, read.after) == (at2, 2)
        assert [(e.version, e.data["name"]) for e in read.events] == [(3, "c"), (4, "d")]
        assert await store.head(store.layout.shard_of(agg)) == head  # not in the log
        assert len(await store.read_aggregate(agg)) == 4
        # Refused at or below the kept version (the same state for everyone), replaced above.
        assert not await store.save_snapshot(Snapshot(agg, 2, "cart.state", 1, '{"other": 1}'))
        assert not await store.save_snapshot(Snapshot(agg, 1, "cart.state", 1, '{"names": "a"}'))
        assert (await store.read_from_snapshot(agg)).snapshot == at2
        at4 = Snapshot(agg, 4, "cart.state", 1, '{"names": "abcd"}')
        assert await store.save_snapshot(at4)
        read = await store.read_from_snapshot(agg)
        assert (read.snapshot, read.after, read.events) == (at4, 4, [])
        with pytest.raises(ValueError):
            await store.save_snapshot(Snapshot(agg, 0, "cart.state", 1, "{}"))

    async def test_concurrent_snapshot_writes_keep_the_newest(self, store: EventStorePort) -> None:
        agg = str(uuid.uuid4())
        await store.append([added(agg, str(n)) for n in range(6)], expected_version=0)
        snapshots = [Snapshot(agg, v, "cart.state", 1, f'{{"v": {v}}}') for v in (3, 6, 1, 6, 5)]
        written = await asyncio.gather(*(store.save_snapshot(s) for s in snapshots * 2))
        assert written.count(True) <= 3 and True in written
        read = await store.read_from_snapshot(agg)
        assert read.snapshot == snapshots[1] and read.events == []

    async def test_an_unreadable_snapshot_entry_still_tells_its_version(
        self, store: EventStorePort
    ) -> None:
        agg, other = str(uuid.uuid4()), str(uuid.uuid4())
        await store.append([added(agg, n) for n in "abc"], expected_version=0)
        await self.plant_snapshot_entry(store, agg, 1, {"ver": "1", "data": "{}"})
        read = await store.read_from_snapshot(agg)
        assert (read.snapshot, read.after, [e.version for e in read.events]) == (None, 1, [2, 3])
        wrong = Snapshot(other, 2, "cart.state", 1, "{}").fields()  # another aggregate's
        await self.plant_snapshot_entry(store, agg, 2, wrong)
        read = await store.read_from_snapshot(agg)
        assert (read.snapshot, read.after, [e.version for e in read.events]) == (None, 2, [3])

    async def test_a_snapshot_found_unusable_is_replaced_at_its_version_never_a_newer_one(
        self, store: EventStorePort
    ) -> None:
        agg = str(uuid.uuid4())
        await store.append([added(agg, n) for n in "abcd"], expected_version=0)
        await self.plant_snapshot_entry(store, agg, 2, {"ver": "2", "data": "{}"})
        good = Snapshot(agg, 2, "cart.state", 1, '{"names": "ab"}')
        assert not await store.save_snapshot(good)  # the same version: kept unless replacing
        assert await store.save_snapshot(good, replacing=True)
        read = await store.read_from_snapshot(agg)
        assert (read.snapshot, read.after, [e.version for e in read.events]) == (good, 2, [3, 4])
        at4 = Snapshot(agg, 4, "cart.state", 1, '{"names": "abcd"}')
        assert await store.save_snapshot(at4)
        for older in (good, Snapshot(agg, 3, "cart.state", 1, '{"names": "abc"}')):
            assert not await store.save_snapshot(older, replacing=True)
        assert (await store.read_from_snapshot(agg)).snapshot == at4
