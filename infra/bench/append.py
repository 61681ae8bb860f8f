"""``eco2 bench append``: the log's write and consume throughput, against baselines measured in
the same run on the same Redis: raw pipelined XADD, and the eventsourcing library's POPO and
SQLite recorders (plus our recorder through ``Application.save``). The consume rows (the
handler runtime against a raw XREADGROUP loop) are measured in ``infra.bench.consume``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from opentelemetry.trace import SpanKind

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis, open_redis
from eventstore.store import EventStore
from eventstore.tracing import trace_context, tracer
from infra.bench.consume import (
    CONSUME_BASELINE,
    CONSUME_RUNTIME,
    consume_faststream,
    consume_raw,
)
from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    TracedOption,
    WriteOption,
    bench_services,
    check_repeat,
    print_repetition,
    print_summary,
    record,
    summarize,
)
from infra.bench.ticks import Figure, Tick, bench_registry, delete_namespace, timed
from infra.heap import freeze_startup_heap
from infra.settings import Settings
from schemas.envelope import Envelope, Metadata


class Counter(Aggregate):
    @event("Ticked")
    def tick(self) -> None:
        pass


def tick(aggregate_id: str, n: int, traced: bool = False) -> Envelope:
    """An event; ``traced``: carrying the current trace in its metadata, as the gateway's are."""
    metadata = Metadata(trace=trace_context()) if traced else None
    return bench_registry.envelope(
        Tick(n=n), aggregate_id=aggregate_id, aggregate_type="bench", metadata=metadata
    )


def request(traced: bool) -> contextlib.AbstractContextManager[object]:
    """With ``traced``, a server span around the block, as the gateway makes one per request
    when tracing is on (only traces rooted in one are kept); otherwise nothing, as there."""
    if not traced:
        return contextlib.nullcontext()
    return tracer().start_as_current_span("bench request", kind=SpanKind.SERVER)


async def single_appends(
    store: EventStore, total: int, writers: int = 64, *, traced: bool = False
) -> Figure:
    async def writer(w: int) -> None:
        for i in range(w, total, writers):
            with request(traced):
                await store.append([tick(f"single-{i}", i, traced)], expected_version=0)

    async def work() -> None:
        await asyncio.gather(*(writer(w) for w in range(writers)))

    return await timed(f"append, 1 event/call, {writers} writers", total, work)


async def batched_appends(
    store: EventStore, total: int, per_call: int = 100, *, traced: bool = False
) -> Figure:
    calls = total // per_call
    pipelined = 10  # appends per round trip

    async def pipeline(start: int) -> None:
        for first in range(start, calls, pipelined * 4):
            with request(traced):
                batch = [
                    ([tick(f"batch-{c}", k, traced) for k in range(per_call)], 0)
                    for c in range(first, min(first + pipelined, calls))
                ]
                await store.append_batch(batch)

    async def work() -> None:
        await asyncio.gather(*(pipeline(s * pipelined) for s in range(4)))

    return await timed(f"append, {per_call} events/call, pipelined", calls * per_call, work)


async def raw_xadd(redis: AsyncRedis, layout: Layout, total: int) -> Figure:
    fields = tick("raw", 0).to_fields()
    key = f"{layout.keys(0).tag}:raw"

    async def pipeline(start: int) -> None:
        for first in range(start, total, 4000):
            async with redis.pipeline(transaction=False) as pipe:
                for _ in range(min(1000, total - first)):
                    pipe.xadd(key, fields)
                await pipe.execute()

    async def work() -> None:
        await asyncio.gather(*(pipeline(s * 1000) for s in range(4)))

    return await timed("baseline: raw XADD, pipelined", total, work)


def eventsourcing_save(total: int, persistence: str, env: dict[str, str]) -> Figure:
    """Application.save of aggregates with 10 events each, with a library recorder."""
    app = Application[uuid.UUID](env={"PERSISTENCE_MODULE": persistence, **env})
    aggregates = []
    for _ in range(total // 10):
        counter = Counter()
        for _ in range(9):
            counter.tick()
        aggregates.append(counter)
    started = time.perf_counter()
    for counter in aggregates:
        app.save(counter)
    seconds = time.perf_counter() - started
    app.close()
    return Figure(f"eventsourcing Application.save, {persistence.rsplit('.', 1)[-1]}", total, seconds)


async def run_consume_bench(
    redis_url: str, *, events: int = 50_000, runtime_first: bool = False
) -> list[Figure]:
    """Only the two consume figures of ``eco2 bench append`` (``--only consume``), over the
    backlog the full run consumes (events/2 + 2×events, written untimed), in a throwaway
    namespace; ``runtime_first`` alternates their order between repetitions."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    redis = await open_redis(redis_url, decode_responses=True, max_connections=512)
    store = EventStore(redis, Layout(namespace, 4), bench_registry)
    consumed = events // 2 + events * 2
    consumed -= consumed % 100  # what batched_appends writes: whole calls of 100
    try:
        await batched_appends(store, consumed)
        if runtime_first:
            runtime = await consume_faststream(redis_url, store, consumed)
            baseline = await consume_raw(store, consumed)
        else:
            baseline = await consume_raw(store, consumed)
            runtime = await consume_faststream(redis_url, store, consumed)
        return [baseline, runtime]
    finally:
        await delete_namespace(redis, namespace)
        await redis.aclose()


async def run_append_bench(redis_url: str, *, events: int = 50_000) -> list[Figure]:
    """All figures of ``eco2 bench append`` in one run, in a throwaway namespace."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    layout = Layout(namespace, 4)
    redis = await open_redis(redis_url, decode_responses=True, max_connections=512)
    store = EventStore(redis, layout, bench_registry)
    figures: list[Figure] = []
    try:
        figures.append(await raw_xadd(redis, layout, events * 2))
        figures.append(await single_appends(store, events // 2))
        figures.append(await batched_appends(store, events * 2))
        consumed = events // 2 + events * 2
        figures.append(await consume_raw(store, consumed))
        figures.append(await consume_faststream(redis_url, store, consumed))
        es_events = min(events, 20_000)
        with tempfile.TemporaryDirectory() as tmp:
            runs = [
                ("eventsourcing.popo", {}),
                ("eventsourcing.sqlite", {"SQLITE_DBNAME": os.path.join(tmp, "bench.db")}),
                (
                    "eventstore.es.persistence",
                    {"REDIS_URL": redis_url, "ECO2_NAMESPACE": namespace + "es"},
                ),
            ]
            for module, env in runs:
                figures.append(await asyncio.to_thread(eventsourcing_save, es_events, module, env))
    finally:
        for ns in (namespace, namespace + "es"):
            await delete_namespace(redis, ns)
        await redis.aclose()
    return figures


CLUSTER_SUFFIX = " — Redis Cluster, 3 masters"
NODE_SUFFIX = " — one node, paired"
UNTRACED_SUFFIX = " — tracing off, paired"
TRACED_SUFFIX = " — tracing on"
SPANS = "spans received by the OTLP sink, traced rows"
Measure = Callable[[EventStore, int], Awaitable[Figure]]


async def _on(redis_url: str, measure: Measure, total: int) -> Figure:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    redis = await open_redis(redis_url, decode_responses=True, max_connections=512)
    try:
        return await measure(EventStore(redis, Layout(namespace, 4), bench_registry), total)
    finally:
        await delete_namespace(redis, namespace)
        await redis.aclose()


async def compare_on_cluster(
    node_url: str, cluster_url: str, *, events: int = 50_000, rounds: int = 2
) -> list[Figure]:
    """The store's own figures on one node and on a Redis Cluster, measured in alternation
    (best of ``rounds`` each), so that other load on the machine hits both alike: on one
    machine the cluster adds no cores, so the ratio is the cost of cluster routing."""
    measures: list[tuple[Measure, int]] = [
        (single_appends, events // 2), (batched_appends, events * 2), (_write_then_consume, events),
    ]
    figures: list[Figure] = []
    for measure, total in measures:
        best: dict[str, Figure] = {}
        for _ in range(rounds):
            for label, url in ((NODE_SUFFIX, node_url), (CLUSTER_SUFFIX, cluster_url)):
                figure = await _on(url, measure, total)
                if label not in best or figure.rate > best[label].rate:
                    best[label] = figure
        for label in (NODE_SUFFIX, CLUSTER_SUFFIX):
            f = best[label]
            figures.append(Figure(f.name + label, f.events, f.seconds))
    return figures


async def _write_then_consume(store: EventStore, total: int, *, traced: bool = False) -> Figure:
    await batched_appends(store, total, traced=traced)
    return await consume_faststream(None, store, total - total % 100)


def ratio_pairs(names: Sequence[str]) -> list[tuple[str, str]]:
    """Each figure against the first (raw XADD; with ``--only consume`` the consume baseline),
    the handler runtime against the raw consume loop, each cluster figure against its paired
    one-node figure, each traced figure against its paired untraced one."""
    raw, pairs = names[0], []
    if CONSUME_BASELINE in names and CONSUME_RUNTIME in names and raw != CONSUME_BASELINE:
        pairs.append((CONSUME_RUNTIME, CONSUME_BASELINE))
    for name in names[1:]:
        if name.endswith(CLUSTER_SUFFIX):
            pairs.append((name, name.removesuffix(CLUSTER_SUFFIX) + NODE_SUFFIX))
        elif name.endswith(TRACED_SUFFIX):
            pairs.append((name, name.removesuffix(TRACED_SUFFIX) + UNTRACED_SUFFIX))
        elif not name.endswith((NODE_SUFFIX, UNTRACED_SUFFIX)) and name != SPANS:
            pairs.append((name, raw))
    return pairs


bench_app = typer.Typer(help="Benchmarks.")


class Rows(StrEnum):
    ALL = "all"
    CONSUME = "consume"


@bench_app.command("append")
def append_command(
    events: Annotated[int, typer.Option(help="Scale: single appends = events/2, batched = 2×.")]
    = 50_000,
    cluster: Annotated[bool, typer.Option(
        help="Also measure on a local 3-master Redis Cluster (same binary, same run).")] = True,
    traced: TracedOption = False,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
    only: Annotated[Rows, typer.Option(
        help="consume: only the handler runtime and its raw XREADGROUP baseline, in "
        "alternating order (a quick look: no cluster or traced rows, needs --no-write).",
    )] = Rows.ALL,
) -> None:
    """Append and consume throughput of the log, with baselines from the same run; uses
    REDIS_URL or an embedded Redis, and a local Redis Cluster for the cluster rows."""
    from infra.bench.append_traced import compare_traced
    from infra.bench.otlp_sink import OtlpSink
    from infra.embedded.redis_cluster import EmbeddedRedisCluster

    if only is Rows.CONSUME:
        if write or traced:
            raise typer.BadParameter(
                "--only consume is a quick look: pass --no-write, without --traced",
                param_hint="--only",
            )
        cluster = False
    check_repeat(repeat, write)
    settings = Settings.from_env()
    runs: list[dict[str, float]] = []
    with contextlib.ExitStack() as stack:
        settings = stack.enter_context(bench_services(settings))
        assert settings.redis_url is not None
        cluster_url = None
        if cluster:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="eco2-bench-cluster-"))
            # No replicas: the single node it is compared with has none either.
            nodes = EmbeddedRedisCluster(settings.with_(data_dir=Path(tmp)), replicas=0)
            cluster_url = stack.enter_context(nodes)
        sink = stack.enter_context(OtlpSink()) if traced else None
        freeze_startup_heap()  # as the product's processes do (gateway, workers)
        for n in range(1, repeat + 1):
            if only is Rows.CONSUME:
                figures = asyncio.run(run_consume_bench(
                    settings.redis_url, events=events, runtime_first=n % 2 == 0
                ))
            else:
                figures = asyncio.run(run_append_bench(settings.redis_url, events=events))
            if cluster_url is not None:
                figures += asyncio.run(compare_on_cluster(
                    settings.redis_url, cluster_url, events=events, rounds=1
                ))
            spans = None
            if sink is not None:
                pairs, spans = asyncio.run(compare_traced(
                    settings.redis_url, sink, events=events, traced_first=n % 2 == 0
                ))
                figures += pairs
            runs.append({f.name: f.rate for f in figures})
            if spans is not None:
                runs[-1][SPANS] = float(spans)
            print_repetition(n, repeat, runs[-1])
    spreads = summarize(runs, ratio_pairs(list(runs[0])))
    print_summary("eco2 bench append (events/s)", spreads, repeat)
    if write:
        command = (f"eco2 bench append --events {events} --repeat {repeat}"
                   + ("" if cluster else " --no-cluster") + (" --traced" if traced else ""))
        notes = ["figures are events/s; baseline: raw pipelined XADD on the same Redis"]
        notes += ([CLUSTER_NOTE] if cluster else []) + ([TRACED_NOTE] if traced else [])
        record(output, "eco2 bench append", command, spreads, repeat, notes)


CLUSTER_NOTE = (
    "Paired rows: the same writers on the single node and on a local Redis Cluster of 3 "
    "masters (no replicas, like the node) on this machine, measured in alternation within each "
    "repetition. The cluster adds no cores here, so the ratio is the cost of cluster routing; "
    "the capacity model shows how throughput grows with masters."
)
TRACED_NOTE = (
    "Traced rows: the same writers with tracing off and on, in alternating order within each "
    "repetition; on = the product's configuration (OTLP/HTTP exporter, batch processor, "
    "server-roots sampler, Redis instrumented) exporting to a local OTLP sink process, each "
    "append inside a server span whose trace its events carry, as the gateway's requests do. "
    "A ratio below 1 is the throughput tracing costs."
)
