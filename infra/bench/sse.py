"""``eco2 bench sse``: append → SSE client latency with many open streams, and the Redis
connections one gateway process holds for them.

The bench starts a gateway (uvicorn) and the snapshot projector (the consumer runner) as child
processes on a fresh namespace, opens N SSE connections from client processes
(``infra.bench.sse_clients``; ``jobs`` jobs, N/jobs clients each), then appends events at a
fixed rate. Latency = client receive time − the moment the append was issued (one monotonic
clock for every process of the machine), so it covers the append, the projector's snapshot +
PUBLISH, the gateway's hub fan-out and HTTP. The gateway's resident memory and CPU time are
read as the streams open, while they are held idle and while events flow: the cost of a stream. A raw Redis PUBLISH → SUBSCRIBE at the
same rate is measured in the same run as the floor. Results go to BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import secrets
import tempfile
import time
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import redis.asyncio as aioredis
import typer

import schemas
from eventstore.keys import Layout
from eventstore.redis_client import node_address, open_redis, sharded_pubsub
from eventstore.store import ANY, EventStore
from infra.bench.repeat import (
    BENCHMARKS,
    OutputOption,
    RepeatOption,
    TracedOption,
    WriteOption,
    bench_services,
    check_repeat,
    print_summary,
    record,
    summarize,
)
from infra.bench.sse_processes import (
    OTEL_VARIABLES,
    STREAMS_PER_CLIENT_PROCESS,
    Children,
    ProcessGauge,
    SseClients,
    cpu_sampler,
    free_port,
    redis_connections_of,
    wait_ready,
)
from infra.bench.sse_record import (
    NOTE,
    RATIOS,
    TRACED,
    TRACED_NOTE,
    TRACED_RATIOS,
    SseBenchResult,
    figures,
    report,
    traced_figures,
)
from infra.process_limits import raise_open_files_limit
from infra.settings import Settings
from schemas.envelope import Envelope, Metadata
from schemas.registry import Event
from schemas.scan import SCAN_JOB, ScanCompleted, ScanQueued, Stage, StageStarted

bench_app = typer.Typer(help="SSE fan-out benchmark.")


def _event(job: str, event: Event, user: str, traced: bool = False) -> list[Envelope]:
    """``traced``: the event carries a sampled trace, as a worker's effect of a traced request
    does, so the projector and the gateway continue it."""
    trace = {"traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"}
    return [schemas.registry.envelope(
        event, aggregate_id=job, aggregate_type=SCAN_JOB,
        metadata=Metadata(user_id=user, trace=trace if traced else {}),
    )]


async def _baseline(redis_url: str, channel: str, rate: float, seconds: float) -> list[float]:
    """Raw PUBLISH → SUBSCRIBE latency (ms) at ``rate`` messages/s."""
    pub = await open_redis(redis_url)
    sharded = sharded_pubsub(pub)
    address = await node_address(pub, channel)  # a cluster: the shard channel's master
    sub_client = (
        aioredis.Redis(host=address[0], port=address[1]) if address
        else aioredis.Redis.from_url(redis_url)
    )
    pubsub = sub_client.pubsub()
    if sharded:
        await pubsub.ssubscribe(channel)
    else:
        await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=5)  # the confirmation
    out: list[float] = []
    total = int(rate * seconds)

    async def receive() -> None:
        while len(out) < total:
            msg = await pubsub.get_message(timeout=5)
            if msg and msg["type"] in ("message", "smessage"):
                out.append((time.perf_counter() - float(msg["data"])) * 1000)

    reader = asyncio.create_task(receive())
    start = time.perf_counter()
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        if sharded:
            await pub.spublish(channel, repr(time.perf_counter()))
        else:
            await pub.publish(channel, repr(time.perf_counter()))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader, 10)
    await pubsub.aclose()
    await sub_client.aclose()
    await pub.aclose()
    return out


async def run_sse_bench(
    settings: Settings, *, connections: int = 1000, jobs: int = 250, rate: float = 200.0,
    duration_s: float = 10.0, otlp_endpoint: str | None = None,
    client_processes: int | None = None,
) -> SseBenchResult:
    """Run the benchmark against ``settings.redis_url`` on a fresh namespace (deleted after),
    the streams opened by ``client_processes`` child processes (default: one per
    ``STREAMS_PER_CLIENT_PROCESS`` streams);
    with ``otlp_endpoint``, the gateway and the projector trace as in production, exporting
    there, and the appended events carry sampled traces; without, they do not trace."""
    if settings.redis_url is None:
        raise ValueError("the bench needs REDIS_URL")
    from gateway.auth_tokens import bearer

    namespace = f"bsse{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {**os.environ, "REDIS_URL": settings.redis_url, "ECO2_NAMESPACE": namespace,
           "ECO2_SHARDS": str(settings.shards), "ECO2_PORT": str(port), "ECO2_HOST": "127.0.0.1",
           "ECO2_SECRET_KEY": secrets.token_hex(24), "ECO2_LOG_LEVEL": "warning"}
    env.pop("DATABASE_URL", None)
    for variable in OTEL_VARIABLES:
        env.pop(variable, None)
    if otlp_endpoint is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
    traced = otlp_endpoint is not None
    child_settings = Settings.from_env(env)
    layout = Layout(namespace, settings.shards)
    result = SseBenchResult(connections, jobs, rate, duration_s)
    redis = await open_redis(settings.redis_url, decode_responses=True)
    store = EventStore(redis, layout, schemas.registry)
    children = Children(env, port)
    job_ids = [str(uuid.uuid4()) for _ in range(jobs)]
    owner = {job: f"bench-user-{i % 50}" for i, job in enumerate(job_ids)}
    appended_at: dict[tuple[str, int], float] = {}
    processes = client_processes or max(1, math.ceil(connections / STREAMS_PER_CLIENT_PROCESS))
    clients: SseClients | None = None
    try:
        for job in job_ids:
            await store.append(_event(job, ScanQueued(user_id=owner[job], image_url="http://b/x"),
                                      owner[job]), expected_version=0)
        children.start()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            await wait_ready(http, children)
            gateway_pid = children.procs["gateway"].pid
            gateway = ProcessGauge(gateway_pid)
            at_start = gateway.sample()
            tokens = {user: bearer(child_settings, user)["Authorization"]
                      for user in set(owner.values())}
            streams = [(job_ids[n % jobs], tokens[owner[job_ids[n % jobs]]])
                       for n in range(connections)]
            clients = SseClients(port, streams, processes)
            connect_started = time.perf_counter()
            try:
                await clients.start(timeout_s=120 + connections / 20)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"the streams did not all open ({exc!r}); the gateway's "
                                   f"log ends:\n{children.log('gateway')}") from exc
            result.connect_s = time.perf_counter() - connect_started
            connected = gateway.sample()
            result.client_processes = processes
            result.gateway = gateway.between(at_start, connected, "connect", connections)
            result.baseline_ms = await _baseline(
                settings.redis_url, f"{{{namespace}:s0}}:baseline", rate, min(duration_s, 5.0)
            )
            idle_end = gateway.sample()
            result.gateway |= gateway.between(connected, idle_end, "idle", connections)
            projector_cpu = cpu_sampler(children.procs["projector"].pid)
            clients_cpu = clients.cpu_sampler()
            versions = dict.fromkeys(job_ids, 1)
            with contextlib.suppress(OSError):
                result.load_avg = os.getloadavg()
            appending = gateway.sample()
            start = time.perf_counter()
            total = int(rate * duration_s)
            for i in range(total):
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                job = job_ids[i % jobs]
                versions[job] += 1
                appended_at[(job, versions[job])] = time.perf_counter()
                await store.append(_event(job, StageStarted(stage=Stage.VISION, progress=50),
                                          owner[job], traced), expected_version=ANY)
            result.appended = total
            appended = gateway.sample()
            result.gateway |= gateway.between(appending, appended, "live", connections)
            result.gateway_cpu_pct = result.gateway.get("live CPU %")
            metrics = (await http.get("/metrics")).text
            hub = re.search(r"^eco2_sse_hub_redis_connections (\S+)$", metrics, re.M)
            result.hub_connections = int(float(hub[1])) if hub else None
            result.gateway_connections = redis_connections_of(gateway_pid, settings.redis_url)
            result.projector_cpu_pct = projector_cpu()
            result.clients_cpu_pct = clients_cpu()
            for job in job_ids:
                await store.append(_event(job, ScanCompleted(user_id=owner[job]), owner[job]),
                                   expected_version=ANY)
            received = await clients.results(timeout_s=60 + connections / 100)
        result.expected = sum(versions[job_ids[n % jobs]] - 1 for n in range(connections))
        samples: list[float] = []
        bad = []
        for n, (ids, times) in enumerate(received):
            job = job_ids[n % jobs]
            for version, at in zip(ids, times, strict=True):
                sent = appended_at.get((job, version))
                if sent is not None:
                    samples.append((at - sent) * 1000)
            if ids != list(range(1, versions[job] + 2)):
                bad.append((n, ids))
        result.latencies_ms = samples
        result.out_of_order = len(bad)
        result.examples = [
            f"client {n} (job at v{versions[job_ids[n % jobs]] + 1}): {ids[:5]}…{ids[-5:]} "
            f"({len(ids)} ids)" for n, ids in bad[:3]
        ] + clients.errors[:3]
    finally:
        if clients is not None:
            await clients.stop()
        children.stop()
        keys = [k async for k in redis.scan_iter(match=f"{{{namespace}:*", count=1000)]
        for i in range(0, len(keys), 500):
            await redis.delete(*keys[i:i + 500])
        await redis.aclose()
    return result


@bench_app.command("sse")
def sse(
    connections: Annotated[int, typer.Option(min=1, help="Open SSE streams.")] = 1000,
    jobs: Annotated[int, typer.Option(min=1, help="Jobs the streams follow.")] = 250,
    rate: Annotated[float, typer.Option(min=1, help="Events appended per second.")] = 200.0,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of appending.")] = 10.0,
    client_processes: Annotated[int | None, typer.Option(
        min=1, help="Processes the SSE clients are spread over (default: one per "
        f"{STREAMS_PER_CLIENT_PROCESS} streams).")] = None,
    cluster: Annotated[bool, typer.Option(
        help="Run again on a local 3-master Redis Cluster (same binary, same run).")] = True,
    traced: TracedOption = False,
    repeat: RepeatOption = 3,
    write: WriteOption = True,
    output: OutputOption = BENCHMARKS,
) -> None:
    """Append → SSE receive latency with N open streams; uses REDIS_URL or an embedded Redis,
    then a local Redis Cluster for the cluster row."""
    from infra.bench.otlp_sink import OtlpSink, check_exported, exported_by
    from infra.embedded.redis_cluster import EmbeddedRedisCluster

    check_repeat(repeat, write)
    raise_open_files_limit()  # the children (gateway, clients) inherit it
    settings = Settings.from_env()
    runs: list[dict[str, float]] = []
    with contextlib.ExitStack() as stack:
        settings = stack.enter_context(bench_services(settings))
        cluster_url = None
        if cluster:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="eco2-bench-cluster-"))
            # No replicas: the single node it is compared with has none either.
            nodes = EmbeddedRedisCluster(settings.with_(data_dir=Path(tmp)), replicas=0)
            cluster_url = stack.enter_context(nodes)
        sink = stack.enter_context(OtlpSink()) if traced else None

        def run(endpoint: str | None = None) -> SseBenchResult:
            return asyncio.run(run_sse_bench(
                settings, connections=connections, jobs=jobs, rate=rate, duration_s=duration,
                otlp_endpoint=endpoint, client_processes=client_processes,
            ))

        for n in range(1, repeat + 1):
            with_tracing, received = None, None
            if sink is not None and n % 2 == 0:  # alternate which of the pair runs first
                with_tracing, received = exported_by(sink, run)
            result = run()
            typer.echo(f"repetition {n}/{repeat}:\n" + report(result))
            if sink is not None and with_tracing is None:
                with_tracing, received = exported_by(sink, run)
            if with_tracing is not None and received is not None:
                typer.echo(f"tracing on (spans received by the OTLP sink: {received.spans}, "
                           f"by service {received.by_service}):\n" + report(with_tracing))
                check_exported(TRACED, received.spans)
            on_cluster = None
            if cluster_url is not None:
                on_cluster = asyncio.run(run_sse_bench(
                    settings.with_(redis_url=cluster_url), connections=connections,
                    jobs=jobs, rate=rate, duration_s=duration, client_processes=client_processes,
                ))
                typer.echo("Redis Cluster (3 masters):\n" + report(on_cluster))
            runs.append(figures(result, on_cluster))
            if with_tracing is not None and received is not None:
                runs[-1] |= traced_figures(with_tracing, received.spans)
    spreads = summarize(runs, RATIOS + (TRACED_RATIOS if traced else []))
    print_summary("SSE: eco2 bench sse", spreads, repeat)
    if write:
        command = (f"eco2 bench sse --connections {connections} --jobs {jobs} --rate {rate:g} "
                   f"--duration {duration:g} --repeat {repeat}"
                   + ("" if cluster else " --no-cluster") + (" --traced" if traced else ""))
        record(output, "SSE: `eco2 bench sse`", command, spreads, repeat,
               [NOTE] + ([TRACED_NOTE] if traced else []))
