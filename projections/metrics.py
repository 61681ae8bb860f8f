"""Prometheus metrics of the projectors (served by the gateway's ``/metrics``).

The metric objects live in a ``ProjectionMetrics`` built for a registry: the default registry's
instance is made once here (metric objects, not clients); tests pass their own registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

LABELS = ("projection", "shard")


@dataclass(frozen=True)
class ProjectionMetrics:
    lag: Gauge  # shard head − checkpoint, in events
    position: Gauge  # the checkpoint
    owned: Gauge  # 1 while this process owns (projection, shard)
    applied: Counter
    skipped: Counter  # by reason: operator (``eco2 projections skip``); never on its own
    errors: Counter  # transient errors (Postgres/Redis unavailable, rejected commits)
    halted: Gauge  # 1 while the shard is stopped at an event it cannot apply (alert on it)

    @classmethod
    def create(cls, registry: CollectorRegistry) -> ProjectionMetrics:
        return cls(
            lag=Gauge(
                "eco2_projection_lag",
                "Events in the shard log after the projection's checkpoint.",
                LABELS,
                registry=registry,
            ),
            position=Gauge(
                "eco2_projection_position",
                "The projection's checkpoint (last applied shard-log position).",
                LABELS,
                registry=registry,
            ),
            owned=Gauge(
                "eco2_projection_owned",
                "1 while this process holds the projection's lease on the shard.",
                LABELS,
                registry=registry,
            ),
            applied=Counter(
                "eco2_projection_events_applied",
                "Events applied to read models.",
                LABELS,
                registry=registry,
            ),
            skipped=Counter(
                "eco2_projection_events_skipped",
                "Events stepped over by an operator's decision (eco2 projections skip).",
                (*LABELS, "reason"),
                registry=registry,
            ),
            errors=Counter(
                "eco2_projection_errors",
                "Transient failures (store unavailable, commit rejected); the projector retries.",
                (*LABELS, "kind"),
                registry=registry,
            ),
            halted=Gauge(
                "eco2_projection_halted",
                "1 while the projector of the shard is stopped at an event it cannot apply.",
                LABELS,
                registry=registry,
            ),
        )


_default: ProjectionMetrics | None = None


def projection_metrics(registry: CollectorRegistry | None = None) -> ProjectionMetrics:
    """Metrics registered in ``registry``; the default registry's are shared per process."""
    global _default
    if registry is not None:
        return ProjectionMetrics.create(registry)
    if _default is None:
        _default = ProjectionMetrics.create(REGISTRY)
    return _default
