"""Prometheus metrics of a gateway process, in its own registry (no global state).

Figures the gateway keeps itself (request latency, open SSE streams and their delivery latency,
hub connections) plus figures read from the log at scrape time by ``LogCollector``
(``LogReader.figures``): DLQ size per shard, each shard's head and, per consumer group, pending
entries, lag and the group's retry backlog. Other packages may register their own collectors on
``GatewayMetrics.registry``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from eventstore.keys import Layout
from eventstore.log_stats import GroupFigures
from eventstore.reading import LogReader
from eventstore.redis_client import AsyncRedis

log = logging.getLogger(__name__)


class LogCollector(Collector):
    """DLQ sizes and consumer-group figures, as of the last ``refresh``."""

    def __init__(self) -> None:
        self.dlq: dict[int, int] = {}
        self.heads: dict[int, int] = {}  # last position of each shard's log
        self.groups: list[GroupFigures] = []

    async def refresh(self, redis: AsyncRedis, layout: Layout) -> None:
        """Read the figures from the log right before a scrape."""
        figures = await LogReader(redis, layout).figures()
        self.dlq = {s.shard: s.dead_letters for s in figures.shards}
        self.heads = {s.shard: s.head for s in figures.shards}
        self.groups = figures.groups

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
