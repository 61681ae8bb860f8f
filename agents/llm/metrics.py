"""Prometheus metrics of model calls: latency, errors and tokens per provider and model.

Tokens are what the provider reports (OpenAI ``usage``, Gemini ``usage_metadata``); the local
provider has no tokenizer and counts characters / 4, rounded up (``estimate_tokens``).
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

LLM_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)


@dataclass(frozen=True)
class LLMMetrics:
    calls: Histogram  # seconds per call, by provider, model, operation, outcome
    errors: Counter  # failed calls, by provider, model and error class
    tokens: Counter  # by provider, model and kind (prompt | completion)

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
            tokens=Counter(
                "eco2_llm_tokens",
                "Tokens of model calls by kind (prompt or completion), as the provider reports"
                " them; the local provider's are estimated as characters / 4, rounded up.",
                ("provider", "model", "kind"),
                registry=registry,
            ),
        )

    def count_tokens(self, provider: str, model: str, prompt: int, completion: int) -> None:
        """Add one call's token usage (attempts that failed before a reply report none)."""
        if prompt:
            self.tokens.labels(provider, model, "prompt").inc(prompt)
        if completion:
            self.tokens.labels(provider, model, "completion").inc(completion)


_default: LLMMetrics | None = None


def llm_metrics(registry: CollectorRegistry | None = None) -> LLMMetrics:
    """Metrics registered in ``registry``; the default registry's are shared per process."""
    global _default
    if registry is not None:
        return LLMMetrics.create(registry)
    if _default is None:
        _default = LLMMetrics.create(REGISTRY)
    return _default


def estimate_tokens(text: str) -> int:
    """A provider-free token estimate: characters / 4, rounded up."""
    return -(-len(text) // 4)
