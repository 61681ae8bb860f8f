"""The hub's one timer (``gateway.live_ticker``) on a single Redis node and on a Redis Cluster:
the versions it reads for the streams it times out, and every wait ending, however many fall
in one tick."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from eventstore.keys import Layout
from eventstore.store import EventStore
from gateway.live_hub import LiveHub
from gateway.live_subscription import Signal
from gateway.live_ticker import WAKE_BATCH, JobVersions
from infra.settings import Settings
from schemas.scan import ScanQueued, Stage, StageStarted
from tests.gateway.helpers import append

pytestmark = pytest.mark.redis


@pytest.fixture
def redis_url(redis_targets: str) -> str:
    """This module runs on a single Redis node and on a Redis Cluster."""
    return redis_targets


async def _jobs_at_versions(store: EventStore, count: int) -> dict[str, int]:
    """``count`` jobs (spread over the shards), job ``n`` at version ``n % 3 + 1``."""
    versions = {}
    for n in range(count):
        job = str(uuid.uuid4())
        events = [ScanQueued(user_id="alice", image_url="http://x/y")]
        events += [StageStarted(stage=Stage.VISION, progress=p) for p in range(n % 3)]
        versions[job] = await append(store, job, "alice", *events)
    return versions


async def test_the_versions_of_many_jobs_over_every_shard(
    settings: Settings, store: EventStore
) -> None:
    layout = Layout(settings.namespace, settings.shards)
    versions = await _jobs_at_versions(store, 24)
    assert len({layout.shard_of(job) for job in versions}) == settings.shards
    assert settings.redis_url
    async with LiveHub.open(settings.redis_url, layout) as hub:
        read = await JobVersions(hub.reader, layout).read({*versions, "no-such-job"})
    assert read == versions  # a job without a stream is left out


async def test_every_wait_due_in_one_tick_times_out_with_its_job_s_version(
    settings: Settings, store: EventStore
) -> None:
    layout = Layout(settings.namespace, settings.shards)
    versions = await _jobs_at_versions(store, 5)
    jobs = list(versions)
    assert settings.redis_url
    async with LiveHub.open(settings.redis_url, layout) as hub:
        subs = [hub.subscribe(jobs[n % len(jobs)]) for n in range(3 * WAKE_BATCH + 1)]
        async with asyncio.timeout(20):
            results = await asyncio.gather(*(sub.next(0.05) for sub in subs))
        assert results == [Signal.TIMEOUT] * len(subs)
        assert [sub.log_version for sub in subs] == [versions[sub.job_id] for sub in subs]
        for sub in subs:
            sub.close()
        assert hub.clients == 0
