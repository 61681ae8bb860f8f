"""Trace context through the log: the W3C ``traceparent`` of a message in its metadata.

The gateway stores the request's trace context in each command's ``metadata.trace``; a consumer
continues it (``continued``) so its handler is a child span of whatever wrote the entry, and
every effect's metadata carries the handler's context on (``trace_context``). One scan is then
one trace from the HTTP request to the projector and the SSE message.

Only the OpenTelemetry API is used here: without a configured SDK (``infra.telemetry``) every
call is a no-op costing well under a microsecond, and nothing is written into metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind

# What a log line written while handling a message should say about it (correlation id, job
# id, group, shard); set by the consumer around each handler, read by the log formatter.
LOG_CONTEXT: ContextVar[Mapping[str, str | int] | None] = ContextVar("eco2_log_context", default=None)


def tracer() -> trace.Tracer:
    """The tracer of Eco²'s own spans (the global provider's: a no-op until one is set)."""
    return trace.get_tracer("eco2")


def enabled() -> bool:
    """Whether spans are recorded (an SDK provider is installed): lets a hot loop skip work."""
    return trace.get_current_span().is_recording() or not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )


def trace_context() -> dict[str, str]:
    """The current span's context as carrier fields (``traceparent``, ``tracestate``), empty
    when no span is recording."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_of(carrier: Mapping[str, str]) -> Context:
    """The trace context stored in a message's ``metadata.trace``."""
    return propagate.extract(carrier)


def trace_id_of(fields: Mapping[str, str]) -> str | None:
    """The trace id (32 hex digits) in a log entry's ``meta`` field, None without a valid one:
    what a trace UI's address needs to show the request that caused the entry."""
    try:
        carrier = json.loads(fields.get("meta") or "{}").get("trace") or {}
    except (ValueError, AttributeError):
        return None
    if not isinstance(carrier, dict):
        return None
    span = trace.get_current_span(context_of(carrier)).get_span_context()
    return format(span.trace_id, "032x") if span.is_valid else None


@contextmanager
def continued(
    carrier: Mapping[str, str],
    name: str,
    *,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Mapping[str, str | int] | None = None,
) -> Iterator[Span]:
    """A span named ``name``, child of the context in ``carrier`` (a message's trace), made
    current for the block so everything the handler appends carries it on; ``attributes``
    also become the block's log context."""
    token = LOG_CONTEXT.set(attributes)
    try:
        if not carrier and _untraced():
            # No trace to continue, none current and nothing recording: the span would be a
            # no-op one with an invalid context, as is the current one. Starting and attaching
            # it anyway was most of a projector batch's bookkeeping.
            yield trace.INVALID_SPAN
            return
        with tracer().start_as_current_span(
            name, context=context_of(carrier), kind=kind, attributes=dict(attributes or {})
        ) as span:
            yield span
    finally:
        LOG_CONTEXT.reset(token)


def _untraced() -> bool:
    """No span is current (a valid context would be carried on) and none is recorded."""
    return not trace.get_current_span().get_span_context().is_valid and not enabled()


def record_span(
    carrier: Mapping[str, str],
    name: str,
    *,
    start_ns: int,
    end_ns: int,
    attributes: Mapping[str, str | int] | None = None,
    links: list[Link] | None = None,
) -> None:
    """A finished span of work already done for the message in ``carrier`` (e.g. its share of
    a projector's batch transaction), timed by the caller."""
    span = tracer().start_span(
        name, context=context_of(carrier), kind=SpanKind.CONSUMER,
        attributes=dict(attributes or {}), links=links, start_time=start_ns,
    )
    span.end(end_time=end_ns)
