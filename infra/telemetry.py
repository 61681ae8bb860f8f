"""Tracing and logging of every Eco² process, configured once at its entry point.

Tracing is on when the standard OpenTelemetry variables ask for an exporter
(``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, or
``OTEL_TRACES_EXPORTER=otlp``): spans go over OTLP/HTTP in batches, and Redis, asyncpg and gRPC
calls are instrumented. Only traces that start at a request (server spans) or continue one
carried by a message are kept: the consumers' idle polling never becomes a trace of its own.
Otherwise no SDK is installed and the API calls in the code are no-ops.

Logs: one JSON object per line (``ECO2_LOG_JSON``, the default) or a readable console line,
each carrying the service name and, where known, the trace id, span id, correlation id, job id,
consumer group and shard of the message or request being handled.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from eventstore.tracing import LOG_CONTEXT
from gateway.edge import REQUEST_ID
from infra.settings import Settings


class _ServerRoots(Sampler):
    """Root spans only for server requests; the rest follow their parent."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        decider = ALWAYS_ON if kind == SpanKind.SERVER else ALWAYS_OFF
        return decider.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "ServerRoots"


def configure_tracing(
    service: str, settings: Settings, *, exporter: SpanExporter | None = None,
    instrument: bool = True,
) -> Callable[[], None]:
    """Install the SDK for ``service`` when ``settings.tracing`` (or ``exporter`` is given, as
    tests do); returns the function that flushes and shuts it down at exit."""
    if exporter is None and not settings.tracing:
        return lambda: None
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(root=_ServerRoots()),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=500))
    trace.set_tracer_provider(provider)
    if instrument:
        _instrument()
    return provider.shutdown


def instrumentors() -> list[Any]:
    """The instrumentors tracing turns on: Redis, asyncpg and gRPC (client and server)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.grpc import (
        GrpcAioInstrumentorClient,
        GrpcAioInstrumentorServer,
    )
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    return [
        RedisInstrumentor(),
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
        GrpcAioInstrumentorClient(),  # type: ignore[no-untyped-call]
        GrpcAioInstrumentorServer(),  # type: ignore[no-untyped-call]
    ]


def _instrument() -> None:
    for instrumentor in instrumentors():
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()


# -- logs ---------------------------------------------------------------------------------

_RECORD_FIELDS = ("method", "path", "status", "duration_ms", "client", "user_id", "job_id",
                  "correlation_id")
_CONTEXT_NAMES = {
    "eco2.correlation_id": "correlation_id",
    "eco2.aggregate.id": "job_id",
    "messaging.consumer.group.name": "group",
    "eco2.shard": "shard",
}


def log_fields(record: logging.LogRecord, service: str) -> dict[str, Any]:
    """What a log line says beside its message: service, ids of the request or message being
    handled, and the current trace."""
    out: dict[str, Any] = {"service": service}
    request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
    if request_id:
        out["request_id"] = request_id
        out.setdefault("correlation_id", request_id)
    for key, known in (LOG_CONTEXT.get() or {}).items():
        if key in _CONTEXT_NAMES:
            out[_CONTEXT_NAMES[key]] = known
    for name in _RECORD_FIELDS:
        value = getattr(record, name, None)
        if value is not None:
            out[name] = value
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        out["trace_id"] = format(span.trace_id, "032x")
        out["span_id"] = format(span.span_id, "016x")
    return out


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **log_fields(record, self.service),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class ConsoleLogFormatter(logging.Formatter):
    """A readable line for a terminal, with the same ids at its end."""

    def __init__(self, service: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        fields = log_fields(record, self.service)
        fields.pop("service")
        ids = " ".join(f"{k}={v}" for k, v in fields.items() if k != "span_id")
        line = super().format(record)
        return f"{line} [{ids}]" if ids else line


def configure_logging(service: str, *, level: str = "info", as_json: bool = True) -> None:
    """The one logging configuration of every process: a single stderr handler on the root
    logger (idempotent), JSON or console lines."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "eco2", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLogFormatter(service) if as_json else ConsoleLogFormatter(service))
    handler.eco2 = True  # type: ignore[attr-defined]
    root.addHandler(handler)
