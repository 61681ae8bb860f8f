"""``eco2 chaos``: users scan and chat while faults hit ``eco2 up``; then nothing may be lost.

The run starts its own ``eco2 up`` on its own embedded Redis and Postgres in a temporary data
dir (never the servers of a development ``eco2 up``), plays a fault schedule against it while
the users run, checks the outcome (``infra.chaos_checks``), prints it and appends it to
RELIABILITY.md. The exit status is 1 when a check fails.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from infra.bootstrap import open_resources
from infra.chaos_checks import Check, Findings, check_all
from infra.chaos_faults import SCHEDULES, Injected, Schedule, SseDrops, play
from infra.chaos_report import RunInfo, record, render
from infra.chaos_system import ChaosSystem

chaos_app = typer.Typer(help="Chaos run: faults injected into eco2 up under load.")


@dataclass
class ChaosOutcome:
    info: RunInfo
    findings: Findings
    injected: list[Injected]
    log_tail: str  # the end of eco2 up's output, for a failing run
    errors: list[str]  # eco2 up's error lines (tracebacks of 500s, crashed handlers)

    @property
    def text(self) -> str:
        return render(self.info, self.findings, self.injected)


async def run_chaos(
    schedule: Schedule, *, scans: int, chat_turns: int, users: int, latency: str = "short",
    claim_idle_ms: int = 10_000, drain_s: float = 180.0, note: str = "",
) -> ChaosOutcome:
    """One chaos run in a temporary data dir (removed afterwards)."""
    from infra.chaos_load import Users  # the load generator reuses the benchmarks' clients

    info = RunInfo(schedule.name, scans, chat_turns, users, latency, note=note)
    began, load_at_start = time.monotonic(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="eco2-chaos-") as tmp:
        async with ChaosSystem(Path(tmp), latency=latency, claim_idle_ms=claim_idle_ms) as system:
            drops = SseDrops()
            crowd = Users(system.base_url, system.auth, drops, scans=scans,
                          chat_turns=chat_turns, users=users, load_s=schedule.load_s)
            await crowd.prepare()
            load = asyncio.create_task(crowd.run(drain_s=drain_s))
            injected = await play(schedule, system, drops)
            traffic = await load
            async with open_resources(system.settings, redis_connections=16) as resources:
                findings = await check_all(resources, traffic, injected, settle_s=drain_s)
            survived = system.alive()
            findings.checks.insert(0, Check(
                "eco2 up kept running", survived,
                "the supervisor restarted every killed process" if survived
                else "eco2 up exited during the run",
            ))
            log_tail, errors = system.log_tail(60), system.errors()
    info.seconds = time.monotonic() - began
    info.load = (load_at_start, os.getloadavg()[0])
    return ChaosOutcome(info, findings, injected, log_tail, errors)


@chaos_app.callback(invoke_without_command=True)
def chaos(
    short: Annotated[bool, typer.Option(
        "--short", help="The ≤ 3 min version (compressed schedule, fewer users) CI runs.")] = False,
    scans: Annotated[int | None, typer.Option(min=1, help="Scans [300; short 40].")] = None,
    chat_turns: Annotated[int | None, typer.Option(
        min=1, help="Chat turns [100; short 12].")] = None,
    users: Annotated[int | None, typer.Option(min=1, help="Scanning users [50; short 10].")] = None,
    write: Annotated[bool, typer.Option(help="Append the result to RELIABILITY.md.")] = True,
    note: Annotated[str, typer.Option(help="A line for the record (e.g. what is merged).")] = "",
) -> None:
    """Run the chaos schedule against a fresh eco2 up; exit 1 when a check fails."""
    schedule = SCHEDULES["short" if short else "full"]
    outcome = asyncio.run(run_chaos(
        schedule,
        scans=scans or (40 if short else 300),
        chat_turns=chat_turns or (12 if short else 100),
        users=users or (10 if short else 50),
        claim_idle_ms=5_000 if short else 10_000,
        drain_s=90.0 if short else 180.0,
        note=note,
    ))
    typer.echo(outcome.text)
    if not outcome.findings.ok:
        typer.echo("--- end of eco2 up's output ---\n" + outcome.log_tail)
        typer.echo("--- eco2 up's errors ---\n" + "\n".join(outcome.errors))
    if write:
        record(outcome.text)
        typer.echo("recorded in RELIABILITY.md")
    raise typer.Exit(0 if outcome.findings.ok else 1)
