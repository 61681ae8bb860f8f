"""Tracing on, for the ``--traced`` rows of the benches: a small OTLP/HTTP sink that counts what
the real exporter sends it, and the product's tracing switched on (and off again) in the
bench's own process.

The sink runs as its own process (``python -m infra.bench.otlp_sink PORT``), as a collector
would, so that decoding the spans costs the measured process nothing; it accepts
``POST /v1/traces`` (protobuf, optionally gzip) and answers ``GET /stats`` with the requests,
bytes and spans received so far.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


@dataclass(frozen=True)
class Received:
    requests: int = 0
    bytes: int = 0
    spans: int = 0
    by_service: dict[str, int] = field(default_factory=dict)  # spans, by service.name

    def __sub__(self, before: Received) -> Received:
        services = {name: n - before.by_service.get(name, 0)
                    for name, n in self.by_service.items()}
        return Received(self.requests - before.requests, self.bytes - before.bytes,
                        self.spans - before.spans, {k: n for k, n in services.items() if n})


class OtlpSink:
    """The sink process, started on a free port for the bench's lifetime."""

    def __init__(self) -> None:
        import socket

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> OtlpSink:
        self._proc = subprocess.Popen([sys.executable, "-m", "infra.bench.otlp_sink",
                                       str(self.port)])
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                self.received()
                return self
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("the OTLP sink did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)

    def received(self) -> Received:
        stats = httpx.get(f"{self.endpoint}/stats", timeout=5).json()
        return Received(**stats)


def exported_by(sink: OtlpSink, run: Callable[[str], T]) -> tuple[T, Received]:
    """``run(endpoint)``, which traces to the sink and has flushed its spans when it returns,
    and what the sink received meanwhile."""
    before = sink.received()
    result = run(sink.endpoint)
    return result, sink.received() - before


def check_exported(row: str, spans: int) -> None:
    """A traced row that exported nothing measured nothing: fail the bench loudly."""
    if spans <= 0:
        raise RuntimeError(f"traced row {row!r}: the OTLP sink received no spans, so tracing "
                           "was not really on; its figure would be meaningless")


@contextlib.contextmanager
def tracing_on(sink: OtlpSink, service: str = "eco2-bench") -> Iterator[None]:
    """The product's tracing (``infra.telemetry.configure_tracing``: OTLP/HTTP exporter,
    BatchSpanProcessor, the server-roots sampler, Redis/asyncpg/gRPC instrumented) in this
    process for the block, exporting to ``sink``; on exit every span is flushed, the
    instrumentation removed and the global tracer provider put back as it was.

    OpenTelemetry lets a process set its global provider once; a bench that alternates traced
    and untraced rows in one process has to reset that private state itself."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.util._once import Once

    from infra.settings import Settings
    from infra.telemetry import configure_tracing, instrumentors

    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    already = {type(i) for i in instrumentors() if i.is_instrumented_by_opentelemetry}
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = None, Once()
    shutdown = configure_tracing(
        service, Settings(), exporter=OTLPSpanExporter(endpoint=f"{sink.endpoint}/v1/traces")
    )
    try:
        yield
    finally:
        shutdown()  # flushes the batch processor's queue to the sink
        for instrumentor in instrumentors():
            if type(instrumentor) not in already and instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument()
        trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


# -- the sink process ---------------------------------------------------------------------


def _serve(port: int) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    counts: dict[str, Any] = {"requests": 0, "bytes": 0, "spans": 0, "by_service": {}}
    lock = threading.Lock()
    ok = ExportTraceServiceResponse().SerializeToString()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            size = len(body)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path != "/v1/traces":
                self._answer(404, b"", "text/plain")
                return
            request = ExportTraceServiceRequest.FromString(body)
            with lock:
                counts["requests"] += 1
                counts["bytes"] += size
                for resource in request.resource_spans:
                    service = next((a.value.string_value for a in resource.resource.attributes
                                    if a.key == "service.name"), "?")
                    spans = sum(len(scope.spans) for scope in resource.scope_spans)
                    counts["spans"] += spans
                    by_service = counts["by_service"]
                    by_service[service] = by_service.get(service, 0) + spans
            self._answer(200, ok, "application/x-protobuf")

        def do_GET(self) -> None:
            with lock:
                body = json.dumps(counts).encode()
            self._answer(200, body, "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
