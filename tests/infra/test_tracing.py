"""Trace context through the log, with the SDK's in-memory exporter: a consumer's handler is a
child span of the request that appended the message, and what the handler appends carries the
handler's span on to the next reader. Log lines carry the same ids."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
import redis.asyncio as aioredis
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from eventstore import tracing
from eventstore.causation import caused_by
from eventstore.keys import Layout
from eventstore.store import EventStore
from infra.settings import Settings
from infra.telemetry import JsonLogFormatter, configure_tracing
from schemas.envelope import Envelope, Metadata
from schemas.registry import Message
from tests.eventstore.consumers import runner, running, wait_for
from tests.eventstore.messages import ItemAdded, Noop, test_registry

EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def sdk() -> None:
    """The SDK with an in-memory exporter, installed once for the process (OpenTelemetry allows
    one global provider); spans are only kept under a server span, as in production."""
    if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        pytest.skip("another tracer provider is installed in this process")
    configure_tracing("test", Settings(), exporter=EXPORTER, instrument=False)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    # Each test starts from an empty context: a span some earlier test left current in this
    # thread would otherwise become the parent of what this one records.
    token = otel_context.attach(otel_context.Context())
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()
    otel_context.detach(token)


def finished(exporter: InMemorySpanExporter, name: str) -> list[object]:
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    return [s for s in exporter.get_finished_spans() if s.name == name]


@pytest.mark.redis
async def test_a_handler_continues_the_trace_of_the_request_and_passes_it_on(
    redis_client: aioredis.Redis, layout: Layout, spans: InMemorySpanExporter
) -> None:
    store = EventStore(redis_client, layout, test_registry)
    agg = str(uuid.uuid4())
    with tracing.tracer().start_as_current_span("POST /items", kind=SpanKind.SERVER) as request:
        metadata = Metadata(correlation_id="req-1", trace=tracing.trace_context())
        await store.append([test_registry.envelope(ItemAdded(name="a"), aggregate_id=agg,
                                                   metadata=metadata)], expected_version=0)
    assert metadata.trace["traceparent"].split("-")[1] == format(
        request.get_span_context().trace_id, "032x")
    effects: list[Envelope] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        effect = test_registry.envelope(Noop(), aggregate_id=agg,
                                        metadata=caused_by(envelope, "u1"))
        await store.append([effect], expected_version=1)
        effects.append(effect)

    async with running(runner(store, "traced", handle)):
        await wait_for(lambda: bool(effects))
    [handled] = finished(spans, "traced test.item_added")
    assert handled.kind == SpanKind.CONSUMER
    assert handled.context.trace_id == request.get_span_context().trace_id
    assert handled.parent.span_id == request.get_span_context().span_id
    assert handled.attributes["eco2.correlation_id"] == "req-1"
    assert handled.attributes["eco2.aggregate.id"] == agg
    # the effect carries the handler's own span: its readers become the handler's children
    carried = effects[0].metadata.trace["traceparent"].split("-")
    assert carried[1:3] == [format(handled.context.trace_id, "032x"),
                            format(handled.context.span_id, "016x")]


@pytest.mark.redis
async def test_entries_without_a_trace_record_nothing(
    redis_client: aioredis.Redis, layout: Layout, spans: InMemorySpanExporter
) -> None:
    store = EventStore(redis_client, layout, test_registry)
    seen: list[str] = []

    async def handle(envelope: Envelope, message: Message) -> None:
        seen.append(envelope.aggregate_id)
        assert tracing.trace_context() == {}  # nothing to pass on

    await store.append([test_registry.envelope(ItemAdded(name="a"), aggregate_id="x")],
                       expected_version=0)
    async with running(runner(store, "untraced", handle)):
        await wait_for(lambda: bool(seen))
    assert finished(spans, "untraced test.item_added") == []


@pytest.mark.redis
async def test_an_append_in_a_request_records_its_round_trip_to_redis(
    redis_client: aioredis.Redis, layout: Layout, spans: InMemorySpanExporter
) -> None:
    """Group commit writes its script calls itself on a single node, past redis-py's
    instrumented pipeline: the round trip still shows in the request's trace."""
    store = EventStore(redis_client, layout, test_registry)
    with tracing.tracer().start_as_current_span("POST /items", kind=SpanKind.SERVER) as request:
        await store.append([test_registry.envelope(ItemAdded(name="a"), aggregate_id="t")],
                           expected_version=0)
    [call] = finished(spans, "EVALSHA")
    assert call.kind == SpanKind.CLIENT
    assert call.parent.span_id == request.get_span_context().span_id
    assert call.attributes["db.system"] == "redis"


def test_log_lines_carry_the_trace_and_the_message_being_handled() -> None:
    formatter = JsonLogFormatter("worker-scan")
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    attributes = {"eco2.correlation_id": "corr-9", "eco2.aggregate.id": "job-3",
                  "messaging.consumer.group.name": "scan", "eco2.shard": 2}
    record = logging.LogRecord("commands.x", logging.INFO, __file__, 1, "vision done", (), None)
    with tracing.continued(carrier, "scan scan.requested", attributes=attributes) as span:
        line = json.loads(formatter.format(record))
    assert line["service"] == "worker-scan"
    assert (line["correlation_id"], line["job_id"], line["group"], line["shard"]) == (
        "corr-9", "job-3", "scan", 2)
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")
    outside = json.loads(formatter.format(record))
    assert "trace_id" not in outside and "job_id" not in outside


async def test_each_chat_node_and_subagent_is_a_span_with_its_intent_and_model(
    spans: InMemorySpanExporter,
) -> None:
    from agents.chat import TurnInput, build_chat_graph, offline_chat_deps
    from agents.knowledge import KnowledgeBase

    deps = offline_chat_deps(KnowledgeBase.load())
    turn = TurnInput(chat_id="c1", user_id="u1", model="local",
                     message="캐릭터 뭐 있어? 그리고 고철 시세도 알려줘. 페트병은 어떻게 버려?")
    with tracing.tracer().start_as_current_span("POST /chat", kind=SpanKind.SERVER) as request:
        async for _ in build_chat_graph(deps).run(turn):
            pass
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    ours = [s for s in spans.get_finished_spans()
            if s.context.trace_id == request.get_span_context().trace_id]
    names = [s.name for s in ours]
    assert {"chat.intent", "chat.aggregator", "chat.answer"} <= set(names)
    [intent] = [s for s in ours if s.name == "chat.intent"]
    assert intent.attributes["gen_ai.request.model"] == "local"
    assert intent.attributes["eco2.intent"] in {"character", "recyclable_price", "waste"}
    subagents = [s for s in ours if "eco2.subagent" in (s.attributes or {})]
    assert {s.attributes["eco2.intent"] for s in subagents} >= {
        "character", "recyclable_price", "waste"}
    assert all(s.parent.span_id == request.get_span_context().span_id for s in subagents)
