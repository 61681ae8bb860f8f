"""The live view mapping and the snapshot projector against a real Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

import schemas
from eventstore.keys import Layout
from eventstore.store import EventStore
from projections.live_view import apply_event, fold
from projections.snapshot import project_snapshot, run_snapshot_tail
from projections.snapshot_reads import live_messages, read_snapshot, snapshot_key
from schemas.envelope import Envelope
from schemas.registry import Message
from tests.gateway.helpers import append, failed_scan, full_scan
from tests.projections.proxy import TcpProxy, through


async def job_events(store: EventStore, job: str) -> list[tuple[Envelope, Message]]:
    return [(e, schemas.registry.decode_envelope(e)) for e in await store.read_aggregate(job)]


@pytest.fixture
def store(redis_client: aioredis.Redis, layout: Layout) -> EventStore:
    return EventStore(redis_client, layout, schemas.registry)


@pytest.mark.redis
async def test_live_messages_of_a_successful_scan(store: EventStore) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice"))
    view = None
    messages = []
    for envelope, message in await job_events(store, job):
        view, live = apply_event(view, envelope, message)
        assert live is not None
        messages.append((live.stage, json.loads(live.data)))
    assert [s for s, _ in messages] == [
        "queued", "vision", "vision", "rule", "rule", "answer", "answer", "reward", "reward", "done"
    ]
    assert [m["seq"] for _, m in messages] == list(range(1, 11))
    assert [m["status"] for _, m in messages][:3] == ["completed", "started", "completed"]
    assert all(m["job_id"] == job for _, m in messages)
    vision = messages[2][1]
    assert vision["result"]["classification"]["middle_category"] == "무색페트병"
    assert vision["progress"] == 40
    done = messages[-1][1]
    assert (done["status"], done["progress"]) == ("completed", 100)
    result = done["result"]
    assert result["task_id"] == job and result["status"] == "completed"
    pipeline = result["pipeline_result"]
    assert pipeline["classification_result"]["classification"]["minor_category"] == "음료PET병"
    assert pipeline["classification_result"]["situation_tags"] == ["label_attached"]
    assert pipeline["final_answer"]["user_answer"] == "페트병이에요"
    assert pipeline["disposal_rules"] == {"steps": ["라벨 제거"]}
    assert result["reward"]["name"] == "페티" and result["error"] is None
    assert view is not None and view.terminal and view.user_id == "alice" and view.result == result


@pytest.mark.redis
async def test_a_failed_scan_ends_with_a_failed_done_and_a_readable_message(
    store: EventStore,
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", *failed_scan("alice"))
    view = fold(await job_events(store, job))
    assert view is not None and view.terminal
    assert view.last is not None
    assert view.last["stage"] == "done" and view.last["status"] == "failed"
    assert view.last["message"] == "이미지를 읽을 수 없어요"
    assert view.result is not None and view.result["status"] == "failed"
    assert view.result["error"]["stage"] == "vision"


@pytest.mark.redis
async def test_snapshot_moves_forward_only_and_publishes_after_writing(
    store: EventStore, redis_client: aioredis.Redis, layout: Layout, redis_url: str
) -> None:
    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice")[:4])
    events = await job_events(store, job)
    keys = layout.keys_for(job)
    listener = aioredis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = listener.pubsub()
    await pubsub.subscribe(keys.live)
    assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
    try:
        for envelope, message in events[:2]:
            assert await project_snapshot(envelope, message, redis=redis_client, layout=layout)
        for _ in range(2):
            published = await pubsub.get_message(timeout=2)
            assert published is not None
            data = json.loads(published["data"])
            snapshot = await read_snapshot(redis_client, layout, job)
            assert snapshot is not None and snapshot.version >= data["seq"]
        # Redelivery of an old or the current version: nothing written, nothing published.
        for envelope, message in events[:2]:
            assert not await project_snapshot(envelope, message, redis=redis_client, layout=layout)
        # Out of order: v4 before v3 — v3's facts are folded in from the job's stream.
        v3, v4 = events[2], events[3]
        assert await project_snapshot(*v4, redis=redis_client, layout=layout)
        assert not await project_snapshot(*v3, redis=redis_client, layout=layout)
        snapshot = await read_snapshot(redis_client, layout, job)
        assert snapshot is not None and snapshot.version == 4
        assert snapshot.facts["classification"]["middle_category"] == "무색페트병"
        assert snapshot.user_id == "alice" and snapshot.stage == "rule"
        published = await pubsub.get_message(timeout=2)
        assert published is not None and json.loads(published["data"])["seq"] == 4
        assert await pubsub.get_message(timeout=0.2) is None  # v3 was not published late
        assert await redis_client.ttl(snapshot_key(layout, job)) > 0
    finally:
        await pubsub.aclose()
        await listener.aclose()


@pytest.mark.redis
async def test_events_without_a_live_mapping_are_ignored(
    redis_client: aioredis.Redis, layout: Layout
) -> None:
    from schemas.scan import RequestScan

    command = schemas.registry.envelope(
        RequestScan(job_id="j", user_id="u", image_url="http://x/y.png"), aggregate_id="j"
    )
    message = schemas.registry.decode_envelope(command)
    assert not await project_snapshot(command, message, redis=redis_client, layout=layout)
    assert await read_snapshot(redis_client, layout, "j") is None


@pytest.mark.redis
async def test_concurrent_projectors_agree(
    store: EventStore, redis_client: aioredis.Redis, layout: Layout
) -> None:
    """Two projectors racing over every event (redelivery + reordering) end at the last one."""
    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice"))
    events = await job_events(store, job)
    await asyncio.gather(
        *(project_snapshot(e, m, redis=redis_client, layout=layout) for e, m in events),
        *(project_snapshot(e, m, redis=redis_client, layout=layout) for e, m in reversed(events)),
    )
    snapshot = await read_snapshot(redis_client, layout, job)
    assert snapshot is not None and snapshot.version == 10 and snapshot.terminal
    assert snapshot.result is not None and snapshot.result["reward"]["name"] == "페티"


@pytest.mark.redis
async def test_the_view_cache_saves_reads_but_never_decides(
    store: EventStore, redis_client: aioredis.Redis, layout: Layout
) -> None:
    from projections.snapshot import ViewCache

    job = str(uuid.uuid4())
    await append(store, job, "alice", *full_scan("alice"))
    events = await job_events(store, job)
    cache = ViewCache(max_items=2)
    for envelope, message in events[:5]:
        assert await project_snapshot(envelope, message, redis=redis_client, layout=layout,
                                      cache=cache)
    cached = cache.get(job)
    assert cached is not None and cached.version == 5
    # Another projector process moves the job on; ours only knows v5.
    for envelope, message in events[5:7]:
        assert await project_snapshot(envelope, message, redis=redis_client, layout=layout)
    # v6 again (a redelivery to us): folded from the stale cache, refused by the CAS.
    assert not await project_snapshot(*events[5], redis=redis_client, layout=layout, cache=cache)
    assert cache.get(job) is None
    for envelope, message in events[7:]:
        await project_snapshot(envelope, message, redis=redis_client, layout=layout, cache=cache)
    snapshot = await read_snapshot(redis_client, layout, job)
    assert snapshot is not None and snapshot.version == 10 and snapshot.terminal
    assert snapshot == fold(events)  # the same as one uninterrupted fold
    assert cache.get(job) is None  # finished jobs leave the cache


def jobs_on_one_shard(layout: Layout, count: int) -> list[str]:
    jobs: list[str] = []
    while len(jobs) < count:
        job = str(uuid.uuid4())
        if layout.shard_of(job) == 0:
            jobs.append(job)
    return jobs


@pytest.mark.redis
async def test_a_batch_writes_each_snapshot_once_and_publishes_in_log_order(
    store: EventStore, redis_client: aioredis.Redis, layout: Layout, redis_url: str
) -> None:
    """Two jobs' events interleaved in one batch: one call writes both snapshots at their last
    event and publishes every message in log order; another writer ahead on one job leaves
    only its newer messages to publish; a redelivered batch publishes nothing."""
    from projections.snapshot import ViewCache, project_snapshots

    first, second = jobs_on_one_shard(layout, 2)
    await append(store, first, "alice", *full_scan("alice"))
    await append(store, second, "bob", *full_scan("bob"))
    a, b = await job_events(store, first), await job_events(store, second)
    batch = [event for pair in zip(a, b, strict=True) for event in pair]  # interleaved
    # another projector already moved the second job to v4 (and published up to it)
    for envelope, message in b[:4]:
        assert await project_snapshot(envelope, message, redis=redis_client, layout=layout)
    listener = aioredis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = listener.pubsub()
    await pubsub.subscribe(layout.keys(0).live)
    assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
    cache = ViewCache()
    try:
        published = await project_snapshots(batch, redis=redis_client, layout=layout,
                                            cache=cache)
        expected = [(e.aggregate_id, e.version) for e, _ in batch
                    if e.aggregate_id == first or e.version > 4]
        assert [(live.job_id, live.version) for live in published] == expected
        received = []
        publishes = 0
        while (message := await pubsub.get_message(timeout=0.5)) is not None:
            publishes += 1
            for raw in live_messages(message["data"]):
                data = json.loads(raw)
                received.append((data["job_id"], data["seq"]))
        assert received == expected
        assert publishes == 1  # the batch's messages in one PUBLISH
        for job, events in ((first, a), (second, b)):
            snapshot = await read_snapshot(redis_client, layout, job)
            assert snapshot == fold(events)
            assert cache.get(job) is None  # terminal: left the cache
        # redelivered: nothing written, nothing published
        assert await project_snapshots(batch, redis=redis_client, layout=layout) == []
        assert await pubsub.get_message(timeout=0.3) is None
    finally:
        await pubsub.aclose()
        await listener.aclose()


@pytest.mark.redis
async def test_the_stand_in_tail_follows_again_after_redis_went_away(
    store: EventStore, redis_url: str, layout: Layout
) -> None:
    """``run_snapshot_tail`` (tests' and benches' projector) outlives a Redis outage longer than
    redis-py's own retries: it reads again from the last position it projected."""
    target = urlsplit(redis_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    proxied = aioredis.Redis.from_url(
        through(redis_url, await proxy.start()), decode_responses=True, socket_connect_timeout=1
    )
    tail = asyncio.create_task(run_snapshot_tail(proxied, layout, block_ms=100))

    async def snapshot_at(job: str, version: int) -> None:
        async with asyncio.timeout(20):
            while (view := await read_snapshot(store.redis, layout, job)) is None \
                    or view.version < version:
                assert not tail.done(), tail
                await asyncio.sleep(0.05)

    job = str(uuid.uuid4())
    events = full_scan("alice")
    try:
        await snapshot_at(job, await append(store, job, "alice", *events[:3]))
        await proxy.stop()
        await asyncio.sleep(1.5)  # every reconnection redis-py retries is refused meanwhile
        version = await append(store, job, "alice", *events[3:])
        await proxy.start()
        await snapshot_at(job, version)
    finally:
        tail.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tail
        await proxied.aclose()
        await proxy.stop()
