"""``eco2 bench scan``'s results: one run's figures and its console report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from infra.bench.clients import worst_lag
from infra.bench.cpu import CpuMeter
from infra.bench.repeat import percentile
from infra.bench.scan_users import ScanTally


@dataclass
class BenchResult:
    users: int
    latency: str
    duration_s: float
    ideal_s: float
    seen: ScanTally = field(default_factory=ScanTally)  # every client process's users, merged
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at start and end (shared box)
    nice: int = 0  # scheduling priority the stack and the load generator ran at
    redis: str = "external"  # "external" (REDIS_URL, possibly shared) or "embedded" (ours)
    pipeline: list[float] = field(default_factory=list)  # command appended → done appended
    hops: dict[str, list[float]] = field(default_factory=dict)  # the pipeline's, hop by hop
    cpu: CpuMeter | None = None  # CPU seconds per role over the submitting period
    lags: list[list[float]] = field(default_factory=list)  # each process's event-loop lags

    @property
    def scans_per_min(self) -> float:
        return self.seen.completed * 60.0 / self.duration_s

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        """Percentile ``p`` of the end-to-end latencies (or of ``values``)."""
        return percentile(self.seen.latencies if values is None else values, p)


IDEAL = "ideal (simulated model time) s"


def figures(r: BenchResult) -> dict[str, float]:
    """One repetition's figures; its baseline is the ideal, the simulated model time of one scan
    under the run's latency profile (zero under ``none``, where no ratio is taken)."""
    return {
        "completion %": r.seen.completion,
        "scans/min": r.scans_per_min,
        "end to end p50 s": r.percentile(50),
        "end to end p95 s": r.percentile(95),
        "pipeline p95 s": r.percentile(95, r.pipeline),
        "submit (POST round trip) p50 s": r.percentile(50, r.seen.submits),
        "submit (POST round trip) p95 s": r.percentile(95, r.seen.submits),
        **{f"pipeline hop p95 s, {hop}": r.percentile(95, times) for hop, times in r.hops.items()},
        IDEAL: r.ideal_s,
        "load average at the end": r.load[1],
        "client loop lag p95 ms": 1000 * worst_lag(r.lags, 95),
        **(r.cpu.figures(r.seen.completed, "scan") if r.cpu else {}),
    }


RATIOS = [("end to end p50 s", IDEAL), ("end to end p95 s", IDEAL), ("pipeline p95 s", IDEAL)]
NOTE = (
    "Users submit a scan through `POST /api/v1/scan`, wait for its `done` on the log, repeat; "
    "end to end = submit → `done` observed; pipeline = command appended → `done` appended (the "
    "log's own timestamps). Target: 100 % and p95 ≤ 1.25 × ideal."
)


def report(result: BenchResult) -> str:
    p95, seen = result.percentile(95), result.seen
    verdict = "met" if seen.completion == 100 and p95 <= 1.25 * result.ideal_s else "missed"
    return (
        f"users={result.users} latency={result.latency} submitted={seen.submitted} "
        f"completed={seen.completed} failed={seen.failed} errors={seen.errors}\n"
        f"completion={seen.completion:.2f}% scans/min={result.scans_per_min:.1f} "
        f"p50={result.percentile(50):.2f}s p95={p95:.2f}s p99={result.percentile(99):.2f}s "
        f"pipeline p50={result.percentile(50, result.pipeline):.2f}s "
        f"p95={result.percentile(95, result.pipeline):.2f}s "
        f"ideal={result.ideal_s:.2f}s → target {verdict} (p95 ≤ {1.25 * result.ideal_s:.2f}s)\n"
        + f"submit (POST round trip) p50/p95 s: {result.percentile(50, seen.submits):.2f}/"
        f"{result.percentile(95, seen.submits):.2f}; "
        + "pipeline hops p50/p95 s: " + ", ".join(
            f"{hop} {result.percentile(50, times):.2f}/{result.percentile(95, times):.2f}"
            for hop, times in result.hops.items()) + "\n"
        + (f"errors: {seen.error_kinds}\n" if seen.error_kinds else "")
        + f"load average {result.load[0]:.1f} → {result.load[1]:.1f} on {os.cpu_count()} cores; "
        f"client loop lag p50/p95/max {1000 * worst_lag(result.lags, 50):.0f}/"
        f"{1000 * worst_lag(result.lags, 95):.0f}/{1000 * worst_lag(result.lags, 100):.0f} ms "
        f"over {len(result.lags)} client process(es)"
        + (f"\n{result.cpu.report(seen.completed, 'scan')}" if result.cpu else "")
    )
