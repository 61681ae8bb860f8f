"""The ``--traced`` rows of ``eco2 bench append``: the store's own figures with tracing off and
with the product's tracing on (OTLP/HTTP exporter, batch processor, server-roots sampler,
instrumented Redis) exporting to a local sink, paired within one repetition.

Traced, every append is made inside a server span and its events carry that trace, as the
gateway's requests do, so the consumers continue it: the spans exported are those production
would export for the same work. Untraced, the same code runs without the SDK, as in production
with tracing off."""

from __future__ import annotations

import functools

from infra.bench.append import (
    TRACED_SUFFIX,
    UNTRACED_SUFFIX,
    Measure,
    _on,
    _write_then_consume,
    batched_appends,
    single_appends,
)
from infra.bench.otlp_sink import OtlpSink, check_exported, tracing_on
from infra.bench.ticks import Figure


async def compare_traced(
    redis_url: str, sink: OtlpSink, *, events: int = 50_000, traced_first: bool = False
) -> tuple[list[Figure], int]:
    """Each measure untraced then traced (``traced_first``: the other way round, so that
    alternating repetitions give neither the warmer slot), each on a fresh namespace; returns
    the figures and the spans the sink received for the traced ones. A traced measure whose
    spans never reached the sink fails loudly."""
    measures: list[tuple[Measure, Measure, int]] = [
        (single_appends, functools.partial(single_appends, traced=True), events // 2),
        (batched_appends, functools.partial(batched_appends, traced=True), events * 2),
        (_write_then_consume, functools.partial(_write_then_consume, traced=True), events),
    ]
    figures: list[Figure] = []
    spans = 0
    for untraced, traced, total in measures:
        pair: dict[bool, Figure] = {}
        for on in (True, False) if traced_first else (False, True):
            if not on:
                pair[on] = await _on(redis_url, untraced, total)
                continue
            before = sink.received()
            with tracing_on(sink):
                pair[on] = await _on(redis_url, traced, total)
            exported = (sink.received() - before).spans
            check_exported(pair[on].name, exported)
            spans += exported
        for on, suffix in ((False, UNTRACED_SUFFIX), (True, TRACED_SUFFIX)):
            figures.append(Figure(pair[on].name + suffix, pair[on].events, pair[on].seconds))
    return figures, spans
