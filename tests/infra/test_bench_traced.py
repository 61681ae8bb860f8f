"""``eco2 bench append --traced``: the same rows measured with tracing off and with the
product's tracing on, which really exports spans (to the bench's own OTLP sink); afterwards the
process is untraced again."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from infra.bench.append import TRACED_SUFFIX, UNTRACED_SUFFIX, ratio_pairs
from infra.bench.append_traced import compare_traced
from infra.bench.otlp_sink import OtlpSink


@pytest.mark.redis
async def test_the_traced_rows_export_spans_and_pair_with_untraced_ones(redis_url: str) -> None:
    provider_before = trace.get_tracer_provider()
    with OtlpSink() as sink:
        figures, spans = await compare_traced(redis_url, sink, events=400)
        received = sink.received()

    assert spans > 0
    assert received.spans == spans and received.requests > 0 and received.bytes > 0
    names = [f.name for f in figures]
    traced = [n for n in names if n.endswith(TRACED_SUFFIX)]
    untraced = [n for n in names if n.endswith(UNTRACED_SUFFIX)]
    assert len(traced) == len(untraced) == 3
    assert all(f.events > 0 for f in figures)
    pairs = ratio_pairs(["raw", *names])
    for name in traced:
        assert (name, name.removesuffix(TRACED_SUFFIX) + UNTRACED_SUFFIX) in pairs
    assert trace.get_tracer_provider() is provider_before  # tracing is off again
