"""A chaos run's result: printed for the operator, appended to RELIABILITY.md as a record."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from infra.chaos_checks import Findings
from infra.chaos_faults import Injected

RELIABILITY = Path("RELIABILITY.md")
_HEADER = """# Reliability

Chaos runs (`eco2 chaos`, see README): users scan and chat through the HTTP API against the
real processes of `eco2 up` while faults are injected on a schedule; afterwards the run checks
that nothing was lost or duplicated and that no client saw a 5xx other than 503 during an
outage. Each run appends its section below (newest last).
"""


@dataclass
class RunInfo:
    schedule: str
    scans: int
    chat_turns: int
    users: int
    latency: str
    seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)  # 1-min load average at start and end
    note: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu})"


def faults_table(injected: list[Injected]) -> list[str]:
    rows = ["| t (s) | fault | result |", "|---:|---|---|"]
    for i in sorted(injected, key=lambda i: i.fault.at_s):
        outcome = ("ok: " if i.ok else "NOT INJECTED: ") + i.note
        rows.append(f"| {i.fault.at_s:.0f} | {i.fault.label} | {outcome} |")
    return rows


def summary_table(findings: Findings, injected: list[Injected]) -> list[str]:
    f = findings.figures
    injected_ok = sum(1 for i in injected if i.ok)
    rows = [
        "| measure | value |", "|---|---|",
        f"| faults injected | {injected_ok} of {len(injected)} |",
        f"| commands accepted | {f.get('accepted', 0)} ({f.get('scans', 0)} scans,"
        f" {f.get('chat_turns', 0)} chat turns) |",
        f"| completed / failed | {f.get('completed', 0)} / {f.get('failed', 0)} |",
        f"| lost | {f.get('lost', 0)} (never accepted: {f.get('never_accepted', 0)}) |",
        f"| rewards earned / duplicate / missing | {f.get('rewards_expected', 0)} /"
        f" {f.get('rewards_duplicate', 0)} / {f.get('rewards_missing', 0)} |",
        f"| dead letters | {f.get('dlq', 0)} |",
        f"| projections verify all | {f.get('verify', 'not run')} |",
        f"| SSE transcripts checked / differing | {f.get('transcripts', 0)} /"
        f" {f.get('transcripts_bad', 0)} ({f.get('sse_reconnects', 0)} resumed connections) |",
        f"| HTTP 5xx (other than 503 in an outage) | {f.get('http_5xx', 0)} |",
        f"| 503 during outages | {f.get('http_503_in_outage', 0)} |",
    ]
    return rows


def checks_lines(findings: Findings) -> list[str]:
    lines = []
    for c in findings.checks:
        lines.append(f"- **{'PASS' if c.ok else 'FAIL'}** {c.name}: {c.summary}")
        lines += [f"  - {d}" for d in c.details]
    return lines


def render(info: RunInfo, findings: Findings, injected: list[Injected]) -> str:
    verdict = "all checks pass" if findings.ok else "CHECKS FAILED"
    parts = [
        f"## {info.started:%Y-%m-%d %H:%M} UTC — {info.schedule} run: {verdict}",
        "",
        f"Machine: {machine()}; 1-min load {info.load[0]:.1f} at start, {info.load[1]:.1f} at"
        f" end. {info.scans} scans + {info.chat_turns} chat turns by {info.users} users,"
        f" latency profile `{info.latency}`, {info.seconds:.0f} s in all.",
    ]
    if info.note:
        parts += ["", info.note]
    parts += ["", *summary_table(findings, injected), "", *faults_table(injected), "",
              *checks_lines(findings), ""]
    return "\n".join(parts)


def record(text: str, path: Path = RELIABILITY) -> None:
    """Append a run's section (creating the file with its header the first time)."""
    existing = path.read_text() if path.exists() else _HEADER
    path.write_text(existing.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n")
