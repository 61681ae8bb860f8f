"""The gateway's own figures for ``/ops``, from the registry its ``/metrics`` renders: what the
dashboard plots from this process (request count, errors and p95, open SSE streams, SSE delivery
p99), since the process started. Quantiles are estimated from the histogram buckets the way
PromQL's ``histogram_quantile`` does (linear within the bucket that holds the rank). Request
latency leaves SSE streams out (their duration is the stream's life)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.samples import Sample


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets; None when empty."""
    ordered = sorted(buckets)
    if not ordered or ordered[-1][1] == 0:
        return None
    rank = q * ordered[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in ordered:
        if count >= rank:
            if math.isinf(bound):
                return lower  # beyond the last finite bucket: its bound, as PromQL says
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below
                                              else 0.0)
        lower, below = bound, count
    return lower


def _samples(registry: CollectorRegistry, name: str) -> list[Sample]:
    return [s for family in registry.collect() for s in family.samples if s.name == name]


def _buckets(
    registry: CollectorRegistry, name: str, keep: Callable[[dict[str, str]], bool] = lambda _: True
) -> list[tuple[float, float]]:
    summed: dict[float, float] = defaultdict(float)
    for s in _samples(registry, f"{name}_bucket"):
        if keep(s.labels):
            summed[float(s.labels["le"])] += s.value
    return list(summed.items())


def _total(registry: CollectorRegistry, name: str,
           keep: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
    return sum(s.value for s in _samples(registry, name) if keep(s.labels))


def _not_a_stream(labels: dict[str, str]) -> bool:
    """A stream's duration is its whole life: left out of request latency."""
    return not labels.get("route", "").endswith(("/events", "/tail"))


def gateway_figures(registry: CollectorRegistry) -> dict[str, Any]:
    """``{"http_requests", "http_errors", "http_p95_s", "sse_streams", "sse_delivered",
    "sse_delivery_p99_s"}`` (quantiles None before the first observation)."""
    requests = "eco2_http_request_duration_seconds"
    delivery = "eco2_sse_delivery_seconds"
    return {
        "http_requests": int(_total(registry, f"{requests}_count")),
        "http_errors": int(_total(registry, f"{requests}_count",
                                  lambda labels: labels.get("status", "").startswith("5"))),
        "http_p95_s": histogram_quantile(0.95, _buckets(registry, requests, _not_a_stream)),
        "sse_streams": int(_total(registry, "eco2_sse_connections")),
        "sse_delivered": int(_total(registry, f"{delivery}_count")),
        "sse_delivery_p99_s": histogram_quantile(0.99, _buckets(registry, delivery)),
    }
