"""append.lua takes a call's events as one packed argument, however many there are."""

from __future__ import annotations

import uuid

import ormsgpack
import pytest
import redis.asyncio as aioredis

from eventstore.errors import InvalidAppend, PartialDuplicate
from eventstore.keys import Layout
from eventstore.scripts import append_args, script_source, translate_script_error
from eventstore.store import EventStore
from schemas.envelope import Envelope
from tests.conftest import REDIS_URL
from tests.eventstore.messages import ItemAdded, test_registry

pytestmark = pytest.mark.redis


def added(aggregate_id: str, n: int) -> Envelope:
    return test_registry.envelope(ItemAdded(name=f"i{n}"), aggregate_id=aggregate_id)


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    return EventStore(redis_client, layout, test_registry)


async def test_a_run_longer_than_one_redis_call_chunk_is_recorded_and_deduplicated(
    store: EventStore,
) -> None:
    agg = str(uuid.uuid4())
    events = [added(agg, n) for n in range(2_500)]  # the script checks and records in chunks
    [first] = await store.append_batch([(events, 0)])
    assert [r.version for r in first.records] == list(range(1, 2_501))
    positions = [r.position for r in first.records]
    assert positions == list(range(positions[0], positions[0] + 2_500))

    [again] = await store.append_batch([(events, 0)])
    assert again.duplicate and again.records == first.records

    with pytest.raises(PartialDuplicate, match=str(events[1_700].id)):
        await store.append([added(agg, -1), *events[1_700:]], expected_version=2_500)
    assert await store.version_of(agg) == 2_500


@pytest.mark.parametrize(
    "packed",
    [
        b"not msgpack \xc1",  # 0xc1 is never valid msgpack
        ormsgpack.packb([[0, 1], []]),  # fewer events than the plan announces
        ormsgpack.packb([[0, 1], [["only", "three", "values"]]]),
        ormsgpack.packb([[0], [["e"] * 9]]),  # a plan entry without its count
        ormsgpack.packb([[0, 0], []]),  # an aggregate with no events
        ormsgpack.packb([["e"] * 9]),  # events without a plan
    ],
)
async def test_a_malformed_packed_argument_is_refused(
    redis_client: aioredis.Redis, layout: Layout, packed: bytes
) -> None:
    keys = layout.keys(0)
    script = redis_client.register_script(script_source("append"))
    call_keys = [keys.events, keys.head, keys.event_ids, keys.aggregate("a"), keys.cold]
    with pytest.raises(aioredis.ResponseError) as refused:
        await script(keys=call_keys, args=[1, "1", "", packed])
    assert isinstance(translate_script_error(str(refused.value)), InvalidAppend)
    assert await redis_client.exists(keys.events) == 0


async def test_several_shards_in_one_run_each_get_their_own_reply(layout: Layout) -> None:
    """The ``"s"`` form (one script run for a single node's round trip): a shard whose call is
    refused, or whose write fails half-way, leaves the other shards' appends and replies alone.
    A single node only: on a cluster the shards' keys are in different slots."""
    async with aioredis.Redis.from_url(REDIS_URL, decode_responses=True) as redis_client:
        await _several_shards_in_one_run(redis_client, layout)


async def _several_shards_in_one_run(redis_client: aioredis.Redis, layout: Layout) -> None:
    script = redis_client.register_script(script_source("append"))
    shards = [layout.keys(s) for s in range(3)]
    keys = [k for s in shards for k in (s.events, s.head, s.event_ids, s.aggregate("a"), s.cold)]
    await redis_client.xadd(shards[2].events, {"x": "1"}, id="5-0")  # its head says 0: XADD fails

    def call(n: int) -> list[object]:
        return [5, *append_args("g", "", [0, 1], [added("a", n).wire_values()])]

    replies = await script(
        keys=keys, args=["s", *call(1), 5, 1, "g", "", b"not msgpack \xc1", *call(3)]
    )

    written, refused, failed = replies
    assert written == [["run", 1, 1, 1]]
    assert isinstance(translate_script_error(str(refused)), InvalidAppend)
    assert isinstance(failed, aioredis.ResponseError)
    assert await redis_client.xlen(shards[0].events) == 1
    assert await redis_client.exists(shards[1].events) == 0
    assert await redis_client.xlen(shards[2].events) == 1  # only the entry it had
