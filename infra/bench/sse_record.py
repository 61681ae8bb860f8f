"""The figures of ``eco2 bench sse``: the result, its console report, its figures per repetition."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SseBenchResult:
    connections: int
    jobs: int
    rate: float
    duration_s: float
    appended: int = 0
    expected: int = 0  # deliveries expected: appended events × clients of their job
    latencies_ms: list[float] = field(default_factory=list)
    baseline_ms: list[float] = field(default_factory=list)
    out_of_order: int = 0  # clients whose ids were not exactly 1..N
    examples: list[str] = field(default_factory=list)  # a few of those, for the report
    hub_connections: int | None = None
    gateway_connections: int | None = None
    gateway_cpu_pct: float | None = None
    projector_cpu_pct: float | None = None
    clients_cpu_pct: float | None = None  # this process: the SSE clients and the appender
    load_avg: tuple[float, float, float] | None = None  # the machine's, as appends start
    client_processes: int = 1
    connect_s: float = 0.0  # from starting the clients to every stream open
    gateway: dict[str, float] = field(default_factory=dict)  # ProcessGauge.between figures

    @property
    def lost(self) -> int:
        return self.expected - len(self.latencies_ms)


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _load(r: SseBenchResult) -> str:
    return " / ".join(f"{x:.2f}" for x in r.load_avg) if r.load_avg else "n/a"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _per_stream(r: SseBenchResult) -> str:
    g = r.gateway
    if not g or g.get("connect RSS MiB at end") != g.get("connect RSS MiB at end"):  # NaN
        return "gateway process: n/a (psutil not installed)"
    deliveries = len(r.latencies_ms)
    per_delivery = 1e6 * g["live CPU s"] / deliveries if deliveries else float("nan")
    return (
        f"gateway process, {r.connections} streams from {r.client_processes} client "
        f"process(es), opened in {r.connect_s:.1f} s: RSS {g['connect RSS MiB at end']:.0f} MiB "
        f"(+{g['connect RSS KiB per stream']:.1f} KiB per stream); CPU per stream: "
        f"{g['connect CPU ms per stream']:.2f} ms to open, "
        f"{g['idle CPU ms per stream'] / g['idle s'] * 1000:.2f} µs/s held idle "
        f"({g['idle CPU %']:.1f} % of a core for all), "
        f"{g['live CPU ms per stream']:.2f} ms over {g['live s']:.1f} s of events "
        f"({g['live CPU %']:.1f} % of a core; {per_delivery:.0f} µs per delivery)"
    )


TARGET_P99_MS = 10  # the hot-path target, at up to 10,000 streams


def report(r: SseBenchResult) -> str:
    p99 = percentile(r.latencies_ms, 99)
    verdict = "met" if p99 <= TARGET_P99_MS and r.lost == 0 and r.out_of_order == 0 else "missed"
    return (
        f"connections={r.connections} jobs={r.jobs} rate={r.rate:g}/s appended={r.appended} "
        f"deliveries={len(r.latencies_ms)}/{r.expected} lost={r.lost} out-of-order={r.out_of_order}\n"
        f"append→receive ms: p50={percentile(r.latencies_ms, 50):.2f} "
        f"p90={percentile(r.latencies_ms, 90):.2f} p99={p99:.2f} max={max(r.latencies_ms, default=0):.2f}\n"
        f"raw PUBLISH→SUBSCRIBE ms: p50={percentile(r.baseline_ms, 50):.2f} "
        f"p99={percentile(r.baseline_ms, 99):.2f}\n"
        f"Redis connections: hub {r.hub_connections}, gateway process {r.gateway_connections}; "
        f"CPU % of a core: gateway {_pct(r.gateway_cpu_pct)}, projector "
        f"{_pct(r.projector_cpu_pct)}, clients {_pct(r.clients_cpu_pct)}; load average {_load(r)} → target {verdict} "
        f"(p99 ≤ {TARGET_P99_MS} ms)\n" + _per_stream(r) + "".join(f"\n  {e}" for e in r.examples)
    )


PATH = "append → SSE client"
RAW = "raw PUBLISH → SUBSCRIBE"
CLUSTER = "append → SSE client, Redis Cluster"


def figures(r: SseBenchResult, cluster: SseBenchResult | None = None) -> dict[str, float]:
    """One repetition's figures: the path's latency, the raw pub/sub baseline measured in the
    same repetition, what was lost, the connections held; the cluster's latency when run."""
    out = {
        f"{PATH} p50 ms": percentile(r.latencies_ms, 50),
        f"{PATH} p99 ms": percentile(r.latencies_ms, 99),
        f"{RAW} p50 ms": percentile(r.baseline_ms, 50),
        f"{RAW} p99 ms": percentile(r.baseline_ms, 99),
        "lost + out of order": float(r.lost + r.out_of_order),
    }
    if r.hub_connections is not None:
        out["Redis connections of the hub"] = float(r.hub_connections)
    if r.gateway_connections is not None:
        out["Redis connections of the gateway process"] = float(r.gateway_connections)
    for key in ("connect RSS KiB per stream", "connect CPU ms per stream", "idle CPU %",
                "live CPU %"):
        if key in r.gateway:
            out[f"gateway {key}"] = r.gateway[key]
    if cluster is not None:
        out[f"{CLUSTER} p50 ms"] = percentile(cluster.latencies_ms, 50)
        out[f"{CLUSTER} p99 ms"] = percentile(cluster.latencies_ms, 99)
        out["lost + out of order, Redis Cluster"] = float(cluster.lost + cluster.out_of_order)
    return out


RATIOS = [
    (f"{PATH} p50 ms", f"{RAW} p50 ms"),
    (f"{PATH} p99 ms", f"{RAW} p99 ms"),
    (f"{CLUSTER} p50 ms", f"{PATH} p50 ms"),
]
NOTE = (
    "Latency from issuing an append to an SSE client receiving the event, every stream open on "
    f"one gateway process; target p99 ≤ {TARGET_P99_MS} ms at up to 10,000 streams and 200 events/s, "
    "with O(shards) Redis connections of the hub. "
    "Redis and all processes on this machine."
)


TRACED = f"{PATH}, tracing on"


def traced_figures(r: SseBenchResult, spans: int) -> dict[str, float]:
    """The same repetition's figures with tracing on in the gateway and the projector."""
    return {
        f"{TRACED} p50 ms": percentile(r.latencies_ms, 50),
        f"{TRACED} p99 ms": percentile(r.latencies_ms, 99),
        "lost + out of order, tracing on": float(r.lost + r.out_of_order),
        "spans received by the OTLP sink, tracing on": float(spans),
    }


TRACED_RATIOS = [
    (f"{TRACED} p50 ms", f"{PATH} p50 ms"),
    (f"{TRACED} p99 ms", f"{PATH} p99 ms"),
]
TRACED_NOTE = (
    "Tracing-on rows: a second run in each repetition (which of the two runs first alternates) "
    "with the gateway and the projector tracing as in production (OTLP/HTTP exporter, batch "
    "processor, server-roots sampler) to a local OTLP sink process, every appended event "
    "carrying a sampled trace as a worker's effect of a traced request does. A ratio above 1 "
    "is the latency tracing adds."
)
