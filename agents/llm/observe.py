"""One model call, observed: a client span with the OpenTelemetry GenAI attributes, and its
latency and outcome in the LLM metrics. A no-op span until a tracer provider is configured."""

from __future__ import annotations

import time
from types import TracebackType

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind

from agents.llm.metrics import llm_metrics


class ModelCall:
    """``with ModelCall("vision", model, provider):`` around one call. ``current=False`` for a
    stream: its span is not made current, since a generator may be closed from another context
    than the one it started in."""

    def __init__(self, operation: str, model: str, provider: str, *, current: bool = True) -> None:
        self.operation, self.model, self.provider = operation, model, provider
        self.current = current
        self._token: object | None = None

    def __enter__(self) -> ModelCall:
        self.span = trace.get_tracer("eco2.llm").start_span(
            f"llm {self.operation} {self.model}",
            kind=SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": self.operation,
                "gen_ai.request.model": self.model,
                "gen_ai.system": self.provider,
            },
        )
        if self.current:
            self._token = context.attach(trace.set_span_in_context(self.span))
        self.started = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        metrics = llm_metrics()
        failed = isinstance(exc, Exception)
        metrics.calls.labels(
            self.provider, self.model, self.operation, "error" if failed else "ok"
        ).observe(time.perf_counter() - self.started)
        if failed and exc is not None:
            metrics.errors.labels(self.provider, self.model, type(exc).__name__).inc()
            self.span.record_exception(exc)
            self.span.set_status(trace.StatusCode.ERROR, str(exc))
        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]
        self.span.end()
