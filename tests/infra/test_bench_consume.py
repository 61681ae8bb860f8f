"""``eco2 bench append --only consume``: both consumers handle the whole backlog, each timed
from its start to its last handler run, not through its stop."""

from __future__ import annotations

import time
import uuid

import pytest

from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from eventstore.runtime import BLOCKED_READ_MARGIN_S
from eventstore.store import EventStore
from infra.bench.append import batched_appends, run_consume_bench
from infra.bench.consume import BLOCK_MS, CONSUME_BASELINE, CONSUME_RUNTIME, consume_faststream
from infra.bench.ticks import bench_registry, delete_namespace

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("runtime_first", [False, True], ids=["baseline_first", "runtime_first"])
async def test_both_consumers_handle_the_whole_backlog(redis_url: str, runtime_first: bool) -> None:
    started = time.perf_counter()
    figures = await run_consume_bench(redis_url, events=2000, runtime_first=runtime_first)
    wall = time.perf_counter() - started
    assert [f.name for f in figures] == [CONSUME_BASELINE, CONSUME_RUNTIME]
    assert [f.events for f in figures] == [5000, 5000]  # events/2 + 2×events, whole calls
    assert all(0 < f.seconds < wall for f in figures)


async def test_the_runtime_is_timed_without_its_stop(redis_url: str) -> None:
    redis = await open_redis(redis_url, decode_responses=True)
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    try:
        store = EventStore(redis, Layout(namespace, 4), bench_registry)
        await batched_appends(store, 2000)
        started = time.perf_counter()
        figure = await consume_faststream(redis_url, store, 2000)
        call = time.perf_counter() - started
    finally:
        await delete_namespace(redis, namespace)
        await redis.aclose()
    # after the last run, the graceful stop waits out the reads still blocked in Redis
    assert call - figure.seconds >= BLOCK_MS / 1000 + BLOCKED_READ_MARGIN_S
