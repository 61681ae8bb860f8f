"""Prometheus metrics of a gateway process, in its own registry (no global state).

Figures the gateway keeps itself (request latency, open SSE streams and their delivery latency,
hub connections) plus figures read from the log at scrape time by ``LogCollector``: DLQ size per
shard and, per consumer group, pending entries, lag (Redis 7 reports it; on Redis 6.2 the event
log's lag is computed from its contiguous positions) and the group's retry backlog. Other packages may register their own
collectors on ``GatewayMetrics.registry``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GroupFigures:
    stream: str  # "events" | "commands"
    group: str
    shard: int
    pending: int
    lag: int | None
    retry_backlog: int


class LogCollector(Collector):
    """DLQ sizes and consumer-group figures, as of the last ``refresh``."""

    def __init__(self) -> None:
        self.dlq: dict[int, int] = {}
        self.heads: dict[int, int] = {}  # last position of each shard's log
        self.groups: list[GroupFigures] = []

    async def refresh(self, redis: AsyncRedis, layout: Layout) -> None:
        """Read the figures (one pipelined round trip per step) right before a scrape."""
        async with redis.pipeline(transaction=False) as pipe:
            for keys in layout.all():
                pipe.xlen(keys.dlq)
                pipe.get(keys.head)
                pipe.xinfo_groups(keys.events)
                pipe.xinfo_groups(keys.commands)
            replies = await pipe.execute(raise_on_error=False)
        dlq: dict[int, int] = {}
        heads: dict[int, int] = {}
        found: list[tuple[str, int, dict[str, Any], int]] = []
        for k in range(layout.shards):
            size, head, events, commands = replies[4 * k : 4 * k + 4]
            dlq[k] = size if isinstance(size, int) else 0
            head_pos = int(head) if isinstance(head, str) and head.isdigit() else 0
            heads[k] = head_pos
            for stream, groups in (("events", events), ("commands", commands)):
                if isinstance(groups, list):  # an error reply: the stream does not exist yet
                    found += [(stream, k, g, head_pos) for g in groups]
        async with redis.pipeline(transaction=False) as pipe:
            for _, k, g, _ in found:
                pipe.xinfo_groups(layout.keys(k).retry(str(g["name"])))
            infos = await pipe.execute(raise_on_error=False)
        # Retry entries stay in their stream after processing: the backlog is what the group
        # has not read yet (lag) plus what it holds unacknowledged, not the stream's length.
        backlogs = [
            _retry_backlog(info, str(g["name"]))
            for (_, _, g, _), info in zip(found, infos, strict=True)
        ]
        self.dlq, self.heads = dlq, heads
        self.groups = [
            GroupFigures(
                stream,
                str(g["name"]),
                k,
                int(g.get("pending") or 0),
                _lag(stream, g, head),
                backlog if isinstance(backlog, int) else 0,
            )
            for (stream, k, g, head), backlog in zip(found, backlogs, strict=True)
        ]

    def collect(self) -> Iterator[GaugeMetricFamily]:
        dlq = GaugeMetricFamily("eco2_dlq_entries", "Dead letters per shard", labels=["shard"])
        for shard, size in sorted(self.dlq.items()):
            dlq.add_metric([str(shard)], size)
        yield dlq
        labels = ["stream", "group", "shard"]
        lag = GaugeMetricFamily(
            "eco2_consumer_group_lag", "Entries not yet delivered to the group", labels=labels
        )
        pending = GaugeMetricFamily(
            "eco2_consumer_group_pending", "Delivered, not yet acknowledged", labels=labels
        )
        retry = GaugeMetricFamily(
            "eco2_consumer_group_retry_backlog", "Entries waiting for a retry", labels=labels
        )
        for g in self.groups:
            key = [g.stream, g.group, str(g.shard)]
            pending.add_metric(key, g.pending)
            retry.add_metric(key, g.retry_backlog)
            if g.lag is not None:
                lag.add_metric(key, g.lag)
        yield lag
        yield pending
        yield retry


def _lag(stream: str, group: dict[str, Any], head: int) -> int | None:
    lag = group.get("lag")
    if isinstance(lag, int):
        return lag
    if stream == "events":  # positions are contiguous: head − last delivered position
        last = str(group.get("last-delivered-id") or "0-0").split("-", 1)[0]
        return max(head - int(last), 0) if last.isdigit() else None
    return None


class GatewayMetrics:
    """The gateway's metrics and the registry ``/metrics`` renders."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "eco2_http_request_duration_seconds",
            "HTTP requests by method, route template and status (an SSE stream: its whole life)",
            ["method", "route", "status"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.sse_connections = Gauge(
            "eco2_sse_connections", "Open SSE streams", ["stream"], registry=self.registry
        )
        self.sse_delivery = Histogram(
            "eco2_sse_delivery_seconds",
            "Seconds from an event's append to its SSE message written to a client (live"
            " messages and the gaps they fill; not the history a connection starts with)",
            ["stream"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.sse_slow_disconnects = Counter(
            "eco2_sse_slow_client_disconnects",
            "Streams closed because the client fell behind",
            registry=self.registry,
        )
        self.hub_pubsub = Gauge(
            "eco2_sse_hub_pubsub_connections",
            "Live pub/sub connections (one per shard)",
            registry=self.registry,
        )
        self.hub_redis = Gauge(
            "eco2_sse_hub_redis_connections",
            "Redis connections held by the SSE hub (CLIENT LIST, at scrape time)",
            registry=self.registry,
        )
        self.projection_halted = Gauge(
            "eco2_projection_halted",
            "1 while a projection's shard is stopped at an event it cannot apply (Postgres,"
            " at scrape time; see README 'When a projector stops on an event')",
            ["projection", "shard"],
            registry=self.registry,
        )
        self.rebuild_position = Gauge(
            "eco2_rebuild_position",
            "A running rebuild: checkpoints of the version being built, summed over shards"
            " (Postgres, at scrape time)",
            ["projection"],
            registry=self.registry,
        )
        self.rebuild_target = Gauge(
            "eco2_rebuild_target",
            "A running rebuild: the shard log heads it replays up to, summed over shards",
            ["projection"],
            registry=self.registry,
        )
        self.log = LogCollector()
        self.registry.register(self.log)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def _retry_backlog(info: object, group: str) -> int:
    if not isinstance(info, list):
        return 0
    for g in info:
        if isinstance(g, dict) and str(g.get("name")) == group:
            return int(g.get("lag") or 0) + int(g.get("pending") or 0)
    return 0
