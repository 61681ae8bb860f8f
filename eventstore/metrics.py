"""Prometheus metrics of the log's consumers: every handler run, its outcome and duration,
every dead letter, per consumer group and message type, and the entries per batch read.

Metric objects (not clients) are made once per registry; each process's default-registry set is
served by its ``/metrics`` port. Names and units follow the Prometheus conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

# Handlers run from milliseconds (snapshot) to tens of seconds (an LLM-backed scan stage).
HANDLER_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


@dataclass(frozen=True)
class ConsumerMetrics:
    handled: Histogram  # seconds per handler run, by group, type and outcome
    dead_letters: Counter  # by group and reason
    batches: Histogram  # entries per read of a batch reader, by group

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ConsumerMetrics:
        return cls(
            handled=Histogram(
                "eco2_handler_duration_seconds",
                "One run of a handler on a delivered message (outcome ok, error or retry_later).",
                ("group", "type", "outcome"),
                buckets=HANDLER_BUCKETS,
                registry=registry,
            ),
            dead_letters=Counter(
                "eco2_dead_letters",
                "Entries moved to the dead-letter stream.",
                ("group", "reason"),
                registry=registry,
            ),
            batches=Histogram(
                "eco2_consumer_batch_entries",
                "Entries per read of a consumer group's reader (few per read on a busy "
                "stream: consider ECO2_BATCH_LINGER_MS).",
                ("group",),
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
        )


_default: ConsumerMetrics | None = None


def consumer_metrics(registry: CollectorRegistry | None = None) -> ConsumerMetrics:
    """Metrics registered in ``registry``; the default registry's are shared per process."""
    global _default
    if registry is not None:
        return ConsumerMetrics.create(registry)
    if _default is None:
        _default = ConsumerMetrics.create(REGISTRY)
    return _default


@dataclass(frozen=True)
class ArchiveMetrics:
    archived: Gauge  # the archive's checkpoint per shard
    hot: Gauge  # positions written but not archived yet

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ArchiveMetrics:
        return cls(
            archived=Gauge("eco2_archive_position", "Last shard-log position copied to the "
                           "archive (Postgres event_log).", ("shard",), registry=registry),
            hot=Gauge("eco2_archive_lag", "Shard-log positions not archived yet (events).",
                      ("shard",), registry=registry),
        )


_archive: ArchiveMetrics | None = None


def archive_metrics() -> ArchiveMetrics:
    """The archiver's metrics in the process's default registry."""
    global _archive
    if _archive is None:
        _archive = ArchiveMetrics.create(REGISTRY)
    return _archive
