"""Prometheus metrics of model calls: latency and errors per provider, model and operation."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

LLM_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


@dataclass(frozen=True)
class LLMMetrics:
    calls: Histogram  # seconds per call, by provider, model, operation, outcome
    errors: Counter  # failed calls, by provider, model and error class

    @classmethod
    def create(cls, registry: CollectorRegistry) -> LLMMetrics:
        return cls(
            calls=Histogram(
                "eco2_llm_call_duration_seconds",
                "One model call (a stream: until its last delta), by outcome ok or error.",
                ("provider", "model", "operation", "outcome"),
                buckets=LLM_BUCKETS,
                registry=registry,
            ),
            errors=Counter(
                "eco2_llm_errors",
                "Model calls that failed, by error class.",
                ("provider", "model", "error"),
                registry=registry,
            ),
        )


_default: LLMMetrics | None = None


def llm_metrics(registry: CollectorRegistry | None = None) -> LLMMetrics:
    """Metrics registered in ``registry``; the default registry's are shared per process."""
    global _default
    if registry is not None:
        return LLMMetrics.create(registry)
    if _default is None:
        _default = LLMMetrics.create(REGISTRY)
    return _default
