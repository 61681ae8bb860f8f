"""The log figures of /metrics, read at scrape time: DLQ size, group lag, pending, retries."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from eventstore.keys import Layout
from eventstore.store import EventStore
from gateway.metrics import GatewayMetrics
from schemas.scan import ScanQueued, Stage, StageStarted
from tests.gateway.helpers import append

pytestmark = pytest.mark.redis


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_dlq_lag_pending_and_retry_backlog_per_group_and_shard(
    redis_client: aioredis.Redis, layout: Layout, store: EventStore
) -> None:
    job = str(uuid.uuid4())
    shard = layout.shard_of(job)
    keys = layout.keys(shard)
    await redis_client.xgroup_create(keys.events, "projector", id="0", mkstream=True)
    await append(store, job, "u", ScanQueued(user_id="u", image_url="http://x/y"),
                 *[StageStarted(stage=Stage.VISION, progress=n) for n in range(4)])
    await redis_client.xreadgroup("projector", "c1", {keys.events: ">"}, count=2)  # 2 pending
    await redis_client.xadd(keys.dlq, {"dlq_error": "boom"})
    await redis_client.xgroup_create(keys.retry("projector"), "projector", id="0", mkstream=True)
    await redis_client.xadd(keys.retry("projector"), {"x": "done"})
    [[_, [(done_id, _)]]] = await redis_client.xreadgroup(
        "projector", "c1", {keys.retry("projector"): ">"}, count=1
    )
    await redis_client.xack(keys.retry("projector"), "projector", done_id)  # processed: no backlog
    await redis_client.xadd(keys.retry("projector"), {"x": "1"})
    metrics = GatewayMetrics()
    await metrics.log.refresh(redis_client, layout)
    got = samples(metrics.render().decode())
    labels = (("group", "projector"), ("shard", str(shard)), ("stream", "events"))
    assert got[("eco2_consumer_group_lag", labels)] == 3
    assert got[("eco2_consumer_group_pending", labels)] == 2
    assert got[("eco2_consumer_group_retry_backlog", labels)] == 1
    assert got[("eco2_dlq_entries", (("shard", str(shard)),))] == 1
    other = (shard + 1) % layout.shards
    assert got[("eco2_dlq_entries", (("shard", str(other)),))] == 0
