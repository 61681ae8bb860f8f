"""``continued`` with nothing to continue: the block sees no valid span (effects carry no trace),
whether or not a no-op span is started for it; a trace in the carrier, or a span current
around the block, is still carried on exactly as before."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from eventstore.tracing import LOG_CONTEXT, continued, trace_context

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_an_empty_carrier_continues_nothing() -> None:
    with continued({}, "snapshot batch", attributes={"eco2.group": "snapshot"}) as span:
        assert not span.get_span_context().is_valid
        assert not trace.get_current_span().get_span_context().is_valid
        assert trace_context() == {}
        assert LOG_CONTEXT.get() == {"eco2.group": "snapshot"}
    assert LOG_CONTEXT.get() is None


def test_a_carried_trace_is_continued() -> None:
    with continued({"traceparent": PARENT}, "chat chat.send_message"):
        assert trace_context()["traceparent"].split("-")[1] == PARENT.split("-")[1]


def test_an_empty_carrier_under_a_current_span_hides_it_as_before() -> None:
    outer = NonRecordingSpan(SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331,
        is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED)))
    with trace.use_span(outer):
        assert trace_context() != {}
        with continued({}, "snapshot batch"):
            assert trace_context() == {}  # the block's own (empty) context, not the outer one
