"""The figures of ``eco2 bench sse``: the result, its console report, its BENCHMARKS.md rows."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = Path("BENCHMARKS.md")
START, END = "<!-- bench-sse:start -->", "<!-- bench-sse:end -->"
RUNS = "<!-- runs -->"
INTRO = """## SSE: `eco2 bench sse`

Latency from issuing an append to an SSE client receiving the event, with every stream
open on one gateway process; target p99 ≤ 25 ms with 1,000 streams and O(shards) Redis
connections (one pub/sub connection per shard + a small read pool). The hub figure is
`CLIENT LIST` of the hub's named connections; the process figure counts every
established Redis connection of the gateway (including its shared request pool)."""


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

    @property
    def lost(self) -> int:
        return self.expected - len(self.latencies_ms)


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, {platform.system()}"


def _load(r: SseBenchResult) -> str:
    return " / ".join(f"{x:.2f}" for x in r.load_avg) if r.load_avg else "n/a"


def report(r: SseBenchResult) -> str:
    p99 = percentile(r.latencies_ms, 99)
    verdict = "met" if p99 <= 25 and r.lost == 0 and r.out_of_order == 0 else "missed"
    return (
        f"connections={r.connections} jobs={r.jobs} rate={r.rate:g}/s appended={r.appended} "
        f"deliveries={len(r.latencies_ms)}/{r.expected} lost={r.lost} out-of-order={r.out_of_order}\n"
        f"append→receive ms: p50={percentile(r.latencies_ms, 50):.2f} "
        f"p90={percentile(r.latencies_ms, 90):.2f} p99={p99:.2f} max={max(r.latencies_ms, default=0):.2f}\n"
        f"raw PUBLISH→SUBSCRIBE ms: p50={percentile(r.baseline_ms, 50):.2f} "
        f"p99={percentile(r.baseline_ms, 99):.2f}\n"
        f"Redis connections: hub {r.hub_connections}, gateway process {r.gateway_connections}; "
        f"CPU % of a core: gateway {r.gateway_cpu_pct}, projector {r.projector_cpu_pct}, "
        f"clients {r.clients_cpu_pct}; load average {_load(r)} → target {verdict} "
        "(p99 ≤ 25 ms)" + "".join(f"\n  {e}" for e in r.examples)
    )


def _cluster_rows(r: SseBenchResult, c: SseBenchResult | None) -> list[str]:
    if c is None:
        return []
    lat = c.latencies_ms
    ratio = len(lat) / len(r.latencies_ms) if r.latencies_ms else float("nan")
    p50 = percentile(r.latencies_ms, 50) / percentile(lat, 50) if lat else float("nan")
    return [
        f"| same path, Redis Cluster (3 masters, sharded pub/sub) | {c.connections} "
        f"({c.jobs} jobs) | {c.rate:g} | {len(lat)} | {percentile(lat, 50):.2f} "
        f"| {percentile(lat, 90):.2f} | {percentile(lat, 99):.2f} | {max(lat, default=0):.2f} "
        f"| {c.hub_connections} / {c.gateway_connections} | {c.lost} / {c.out_of_order} |",
        f"| cluster ÷ one node: deliveries {ratio:.2f}, speed at p50 {p50:.2f} "
        "| | | | | | | | | |",
    ]


def record(
    r: SseBenchResult, command: str, path: Path = BENCHMARKS, cluster: SseBenchResult | None = None
) -> None:
    """Append this run's rows to the SSE section of BENCHMARKS.md (older runs are kept)."""
    text = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    runs, intro = "", INTRO
    if START in text and END in text:
        head, rest = text.split(START, 1)
        block, tail = rest.split(END, 1)
        if RUNS in block:  # the section's text above the runs is kept as written
            intro, runs = (part.strip() for part in block.split(RUNS, 1))
    else:
        head, tail = text.rstrip("\n") + "\n\n", "\n"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lat = r.latencies_ms
    run = "\n".join([
        f"### {stamp} — `{command}`",
        "",
        f"Machine: {_machine()}. Redis and all processes on this machine.",
        "",
        "| path | open streams | events/s | deliveries | p50 ms | p90 ms | p99 ms | max ms "
        "| Redis conns (hub / gateway process) | lost / out of order |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| append → projector → pub/sub → gateway → SSE client | {r.connections} "
        f"({r.jobs} jobs) | {r.rate:g} | {len(lat)} | {percentile(lat, 50):.2f} "
        f"| {percentile(lat, 90):.2f} | {percentile(lat, 99):.2f} | {max(lat, default=0):.2f} "
        f"| {r.hub_connections} / {r.gateway_connections} | {r.lost} / {r.out_of_order} |",
        f"| baseline: raw Redis PUBLISH → SUBSCRIBE | 1 | {r.rate:g} | {len(r.baseline_ms)} "
        f"| {percentile(r.baseline_ms, 50):.2f} | {percentile(r.baseline_ms, 90):.2f} "
        f"| {percentile(r.baseline_ms, 99):.2f} | {max(r.baseline_ms, default=0):.2f} | – | – |",
        *_cluster_rows(r, cluster),
        "",
        f"CPU during the appends (% of one core): gateway {r.gateway_cpu_pct}, snapshot "
        f"projector {r.projector_cpu_pct}, SSE clients + appender {r.clients_cpu_pct}. Machine "
        f"load average as appends started: {_load(r)}.",
    ])
    block = "\n".join([intro, "", RUNS, run, *(["", runs] if runs else [])])
    path.write_text(f"{head}{START}\n{block}\n{END}{tail}", "utf-8")
