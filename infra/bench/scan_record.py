"""``eco2 bench scan``'s results: one run's figures and its console report."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from infra.bench.cpu import CpuMeter, LoopLag


@dataclass
class BenchResult:
    users: int
    latency: str
    duration_s: float
    ideal_s: float
    latencies: list[float] = field(default_factory=list)
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    errors: int = 0  # submissions the API refused or that never finished
    error_kinds: dict[str, int] = field(default_factory=dict)  # why, e.g. "HTTP 503 …"
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at start and end (shared box)
    nice: int = 0  # scheduling priority the stack and the load generator ran at
    redis: str = "external"  # "external" (REDIS_URL, possibly shared) or "embedded" (ours)
    pipeline: list[float] = field(default_factory=list)  # command appended → done appended
    cpu: CpuMeter | None = None  # CPU seconds per role over the submitting period
    lag: list[LoopLag] = field(default_factory=list)  # each client process's event-loop lag

    @property
    def completion(self) -> float:
        return 100.0 * self.completed / self.submitted if self.submitted else 0.0

    @property
    def scans_per_min(self) -> float:
        return self.completed * 60.0 / self.duration_s

    def percentile(self, p: float, values: list[float] | None = None) -> float:
        """Percentile ``p`` of the end-to-end latencies (or of ``values``)."""
        ordered = sorted(self.latencies if values is None else values)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]



IDEAL = "ideal (simulated model time) s"


def figures(r: BenchResult) -> dict[str, float]:
    """One repetition's figures; its baseline is the ideal, the simulated model time of one scan
    under the run's latency profile (zero under ``none``, where no ratio is taken)."""
    return {
        "completion %": r.completion,
        "scans/min": r.scans_per_min,
        "end to end p50 s": r.percentile(50),
        "end to end p95 s": r.percentile(95),
        "pipeline p95 s": r.percentile(95, r.pipeline),
        IDEAL: r.ideal_s,
        "load average at the end": r.load[1],
        "client loop lag p95 ms": 1000 * client_lag(r, 95),
        **(r.cpu.figures(r.completed, "scan") if r.cpu else {}),
    }


def client_lag(r: BenchResult, p: float) -> float:
    """The worst client process's event-loop lag percentile ``p`` (seconds)."""
    return max((lag.percentile(p) for lag in r.lag), default=float("nan"))


RATIOS = [("end to end p50 s", IDEAL), ("end to end p95 s", IDEAL), ("pipeline p95 s", IDEAL)]
NOTE = (
    "Users submit a scan through `POST /api/v1/scan`, wait for its `done` on the log, repeat; "
    "end to end = submit → `done` observed; pipeline = command appended → `done` appended (the "
    "log's own timestamps). Target: 100 % and p95 ≤ 1.25 × ideal."
)


def report(result: BenchResult) -> str:
    p95 = result.percentile(95)
    verdict = "met" if result.completion == 100 and p95 <= 1.25 * result.ideal_s else "missed"
    return (
        f"users={result.users} latency={result.latency} submitted={result.submitted} "
        f"completed={result.completed} failed={result.failed} errors={result.errors}\n"
        f"completion={result.completion:.2f}% scans/min={result.scans_per_min:.1f} "
        f"p50={result.percentile(50):.2f}s p95={p95:.2f}s p99={result.percentile(99):.2f}s "
        f"pipeline p50={result.percentile(50, result.pipeline):.2f}s "
        f"p95={result.percentile(95, result.pipeline):.2f}s "
        f"ideal={result.ideal_s:.2f}s → target {verdict} (p95 ≤ {1.25 * result.ideal_s:.2f}s)\n"
        + (f"errors: {result.error_kinds}\n" if result.error_kinds else "")
        + f"load average {result.load[0]:.1f} → {result.load[1]:.1f} on {os.cpu_count()} cores; "
        f"client loop lag p50/p95/max {1000 * client_lag(result, 50):.0f}/"
        f"{1000 * client_lag(result, 95):.0f}/{1000 * client_lag(result, 100):.0f} ms over "
        f"{len(result.lag)} client process(es)"
        + (f"\n{result.cpu.report(result.completed, 'scan')}" if result.cpu else "")
    )
