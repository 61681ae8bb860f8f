"""Exact resume, as a property: random interleavings of appends, disconnects, reconnects with
``Last-Event-ID``, duplicate publishes and pub/sub resyncs → every client receives each event of
its job exactly once, in version order (real Redis, real hub, real snapshot projector)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from eventstore.keys import Layout
from eventstore.redis_client import sharded_pubsub
from eventstore.store import EventStore
from gateway.job_reads import JobReads
from gateway.live_hub import LiveHub
from gateway.sse import Opened, open_job_stream, resume_point
from gateway.state import LiveConfig
from infra.settings import Settings
from projections.live_view import apply_event
from projections.snapshot import project_snapshots
from schemas.scan import ScanCompleted, ScanQueued, Stage, StageStarted
from tests.gateway.helpers import append

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url(redis_targets: str) -> str:
    """This module runs on a single Redis node and on a Redis Cluster."""
    return redis_targets
CONFIG = LiveConfig(keepalive_s=0.3, done_wait_s=3.0, queue_size=64)


@dataclass
class Live:
    hub: LiveHub
    reads: JobReads
    store: EventStore
    redis: aioredis.Redis
    layout: Layout


@pytest.fixture
async def live(
    settings: Settings, store: EventStore, redis_client: aioredis.Redis, projector: None
) -> AsyncIterator[Live]:
    layout = Layout(settings.namespace, settings.shards)
    assert settings.redis_url
    async with LiveHub.open(settings.redis_url, layout, queue_size=CONFIG.queue_size) as hub:
        yield Live(hub, JobReads(hub.reader, layout, schemas.registry), store, redis_client, layout)


@contextlib.asynccontextmanager
async def stream_on_a_hub_of_its_own(
    settings: Settings, config: LiveConfig, job: str
) -> AsyncIterator[Opened]:
    """``job``'s stream opened without ``Last-Event-ID`` on a hub of its own, with no projector
    beside it: nothing is published, so whatever the stream gets it reads from the log."""
    layout = Layout(settings.namespace, settings.shards)
    assert settings.redis_url
    async with LiveHub.open(settings.redis_url, layout) as hub:
        opened = await open_job_stream(
            hub, JobReads(hub.reader, layout, schemas.registry), config, job, None)
        assert opened is not None
        yield opened


@dataclass
class Client:
    job: str
    received: list[int] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None
    done: bool = False

    def connect(self, live: Live) -> None:
        last = str(self.received[-1]) if self.received else None
        self.task = asyncio.create_task(self._consume(live, last))

    async def _consume(self, live: Live, last: str | None) -> None:
        opened = await open_job_stream(live.hub, live.reads, CONFIG, self.job, last)
        if opened is None:  # 204: it already had done
            self.done = True
            return
        async for event in opened.events():
            if event.id is None:  # keepalive / comment
                continue
            self.received.append(int(event.id))
            self.stages.append(str(event.event))
            if event.event == "done":
                self.done = True

    async def drop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


def steps() -> st.SearchStrategy[list[tuple[str, int]]]:
    return st.lists(
        st.tuples(
            st.sampled_from(["append", "append", "drop", "reconnect", "stale", "resync", "yield"]),
            st.integers(0, 5),
        ),
        max_size=30,
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps())
async def test_every_event_exactly_once_in_order(live: Live, plan: list[tuple[str, int]]) -> None:
    jobs = [str(uuid.uuid4()) for _ in range(2)]
    for job in jobs:
        await append(live.store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
    clients = [Client(jobs[i % 2]) for i in range(3)]
    for c in clients:
        c.connect(live)
    for op, n in plan:
        job = jobs[n % 2]
        client = clients[n % 3]
        if op == "append":
            await append(live.store, job, "alice", StageStarted(stage=Stage.VISION, progress=n))
        elif op == "drop":
            await client.drop()
        elif op == "reconnect":
            if client.task is None:
                client.connect(live)
        elif op == "stale":  # a duplicate publish of an old message: must be skipped
            events = await live.store.read_aggregate(job)
            envelope = events[n % len(events)]
            _, old = apply_event(None, envelope, schemas.registry.decode_envelope(envelope))
            assert old is not None
            channel = live.layout.keys_for(job).live
            if sharded_pubsub(live.redis):
                await live.redis.spublish(channel, old.data)
            else:
                await live.redis.publish(channel, old.data)
        elif op == "resync":  # as after a pub/sub reconnect
            live.hub._resync_shard(live.layout.shard_of(job))
        else:
            await asyncio.sleep(0.005 * n)
    for job in jobs:
        await append(live.store, job, "alice", ScanCompleted(user_id="alice"))
    for c in clients:
        if c.task is None:
            c.connect(live)
    async with asyncio.timeout(15):
        await asyncio.gather(*(c.task for c in clients if c.task))
    for c in clients:
        final = await live.store.version_of(c.job)
        assert c.received == list(range(1, final + 1)), (c.job, c.received)
        assert c.done and c.stages[-1] == "done"


async def test_fresh_connection_to_a_finished_job_gets_history_then_done(live: Live) -> None:
    job = str(uuid.uuid4())
    await append(live.store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"),
                 StageStarted(stage=Stage.VISION, progress=5), ScanCompleted(user_id="alice"))
    client = Client(job)
    client.connect(live)
    assert client.task is not None
    await asyncio.wait_for(client.task, 15)  # `done` may wait done_wait_s (3 s) for the snapshot
    assert client.received == [1, 2, 3] and client.stages == ["queued", "vision", "done"]
    # Reconnecting after done: nothing more will come (the HTTP route answers 204).
    assert await open_job_stream(live.hub, live.reads, CONFIG, job, "3") is None


async def test_done_from_the_log_waits_for_the_snapshot(
    settings: Settings, store: EventStore, redis_client: aioredis.Redis
) -> None:
    """Without a projector the snapshot never arrives: `done` is held for done_wait_s."""
    job = str(uuid.uuid4())
    await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"),
                 ScanCompleted(user_id="alice"))
    config = LiveConfig(keepalive_s=0.3, done_wait_s=0.4)
    async with stream_on_a_hub_of_its_own(settings, config, job) as opened:
        loop = asyncio.get_running_loop()
        started = loop.time()
        ids = [e.id async for e in opened.events()]
        assert ids == ["1", "2"]
        assert loop.time() - started >= 0.35


async def test_a_held_done_is_sent_when_the_projector_publishes_it_without_polling(
    settings: Settings, store: EventStore, redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The snapshot lags the log: the stream holds `done` until the projector writes the
    snapshot and publishes its message, and meanwhile reads no snapshot (a read every few ms per
    stream starved the hub's few reader connections on a saturated host)."""
    job = str(uuid.uuid4())
    await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"),
                 ScanCompleted(user_id="alice"))
    reads_of_the_snapshot = 0
    holds = JobReads.snapshot_holds

    async def counted(self: JobReads, *args: Any) -> bool:
        nonlocal reads_of_the_snapshot
        reads_of_the_snapshot += 1
        return await holds(self, *args)

    monkeypatch.setattr(JobReads, "snapshot_holds", counted)
    config = LiveConfig(keepalive_s=0.3, done_wait_s=600)  # only the publication ends the wait
    async with stream_on_a_hub_of_its_own(settings, config, job) as opened:
        events = opened.events()
        task = asyncio.create_task(_ids(events))
        try:
            await asyncio.sleep(1.0)
            assert not task.done() and reads_of_the_snapshot == 1
            history = await store.read_aggregate(job)
            await project_snapshots(
                [(e, schemas.registry.decode_envelope(e)) for e in history],
                redis=redis_client, layout=Layout(settings.namespace, settings.shards),
            )
            ids = await asyncio.wait_for(task, 20)
        finally:
            task.cancel()
    assert ids == ["1", "2"] and reads_of_the_snapshot == 1


async def test_a_client_that_falls_behind_is_disconnected(live: Live) -> None:
    job = str(uuid.uuid4())
    await append(live.store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
    opened = await open_job_stream(live.hub, live.reads, CONFIG, job, None)
    assert opened is not None
    events = opened.events()
    assert (await anext(events)).id == "1"
    # The client reads nothing while more than its queue holds is published.
    for n in range(CONFIG.queue_size + 5):
        await append(live.store, job, "alice", StageStarted(stage=Stage.VISION, progress=n % 100))
    async with asyncio.timeout(5):
        while live.hub.clients and not opened.stream.sub.overflowed:
            await asyncio.sleep(0.02)
    rest = [e async for e in events]
    assert rest and rest[-1].comment is not None and "Last-Event-ID" in rest[-1].comment
    assert live.hub.clients == 0
    # It resumes where it was: the rest of the events, none twice.
    again = await open_job_stream(live.hub, live.reads, CONFIG, job, "1")
    assert again is not None
    gen = again.events()
    got = [int((await anext(gen)).id or 0) for _ in range(CONFIG.queue_size + 5)]
    assert got == list(range(2, CONFIG.queue_size + 7))
    await gen.aclose()


def test_resume_point_resets_on_malformed_or_foreign_ids() -> None:
    assert resume_point(None, 5) == (0, None)
    assert resume_point("3", 5) == (3, None)
    assert resume_point(" 5 ", 5) == (5, None)
    for bad in ["abc", "-1", "3.5", "1e3", "6", "999999"]:
        start, note = resume_point(bad, 5)
        assert start == 0 and note is not None and note.startswith("reset:"), bad


async def test_a_job_older_than_the_snapshot_ttl_replays_done_at_once(
    settings: Settings, store: EventStore
) -> None:
    """Its snapshot has expired: `done` comes from the job stream without waiting for one."""
    from projections.snapshot_reads import SNAPSHOT_TTL_S
    from schemas.envelope import Metadata
    from schemas.scan import SCAN_JOB

    job = str(uuid.uuid4())
    long_ago = time.time() - SNAPSHOT_TTL_S - 3600
    events = [ScanQueued(user_id="alice", image_url="http://x/y"), ScanCompleted(user_id="alice")]
    await store.append([
        schemas.registry.envelope(e, aggregate_id=job, aggregate_type=SCAN_JOB,
                                  metadata=Metadata(user_id="alice"), timestamp=long_ago)
        for e in events
    ], expected_version=0)
    config = LiveConfig(keepalive_s=0.3, done_wait_s=600)  # a wait would outlast the test
    async with stream_on_a_hub_of_its_own(settings, config, job) as opened:
        ids = await asyncio.wait_for(_ids(opened.events()), 30)
    assert ids == ["1", "2"]


async def _ids(events: AsyncIterator[Any]) -> list[str | None]:
    return [e.id async for e in events]


async def test_every_client_of_a_job_gets_the_same_frame_in_the_usual_format(live: Live) -> None:
    """The hub encodes a live message once; its bytes are what sse-starlette would write."""
    from sse_starlette import ServerSentEvent

    from gateway.live_subscription import PublishedEvent

    job = str(uuid.uuid4())
    first, second = live.hub.subscribe(job), live.hub.subscribe(job)
    try:
        await append(live.store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
        a, b = await first.next(10.0), await second.next(10.0)
    finally:
        first.close()
        second.close()
    assert isinstance(a, PublishedEvent) and isinstance(b, PublishedEvent)
    assert a.frame is not None and a.frame is b.frame
    expected = ServerSentEvent(data=a.data, event="queued", id="1").encode()
    assert a.frame.encode() == expected and expected.startswith(b"id: 1\r\nevent: queued\r\n")


async def test_a_quiet_stream_finds_an_event_that_was_never_published(
    settings: Settings, store: EventStore
) -> None:
    """No projector runs, so nothing is published: at its keepalive the stream learns from the
    hub's version check that its job moved on, and reads the event from the job's stream."""
    job = str(uuid.uuid4())
    await append(store, job, "alice", ScanQueued(user_id="alice", image_url="http://x/y"))
    config = LiveConfig(keepalive_s=0.3, done_wait_s=0.3)
    async with stream_on_a_hub_of_its_own(settings, config, job) as opened:
        events = opened.events()
        assert (await anext(events)).id == "1"
        await append(store, job, "alice", StageStarted(stage=Stage.VISION, progress=5))
        names = []
        async with asyncio.timeout(20):
            async for event in events:
                names.append(event.event)
                if event.id is not None:
                    break
        await events.aclose()
    assert names[-1] == "vision" and event.id == "2"
    assert names[:-1] and set(names[:-1]) == {"keepalive"}
