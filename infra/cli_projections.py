"""``eco2 projections …``: list, status, rebuild, verify, run (for analysts and operators).

Registered in ``infra.cli.SUBCOMMANDS``; also runnable alone as ``python -m
infra.cli_projections``. Settings come from the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from infra.bootstrap import open_resources, read_side
from infra.probes import redis_ready, serve_probes
from infra.settings import Settings
from projections.builtin import PROJECTIONS, select
from projections.checkpoint_check import mismatches
from projections.context import ReadSide
from projections.halts import SkipRefused, decide_skip, list_halts, list_skips
from projections.rebuild import default_workers, rebuild
from projections.replay import ReplayProgress, heads
from projections.runner import ProjectorService
from projections.status import projection_status
from projections.verify import VerifyReport, verify
from projections.worker import ProjectorOptions
from readmodels.migrate import migrate

projections_app = typer.Typer(help="Read-model projections: status, rebuild, verify, run.")
console = Console()
T = TypeVar("T")

Names = Annotated[list[str], typer.Argument(help="Projection names, or 'all'.")]


def _names(names: list[str]) -> list[str]:
    return list(PROJECTIONS) if names == ["all"] else names


def _run(job: Callable[[ReadSide], Awaitable[T]]) -> T:
    async def main() -> T:
        async with open_resources(Settings.from_env()) as resources:
            side = read_side(resources)
            await migrate(side.pool)
            return await job(side)

    return asyncio.run(main())


def _progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>9,.0f} events/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _tracker(bar: Progress, description: str) -> Callable[[ReplayProgress], None]:
    task = bar.add_task(description, total=None, rate=0.0)

    def update(progress: ReplayProgress) -> None:
        bar.update(task, completed=progress.done, total=progress.total, rate=progress.rate)

    return update


@projections_app.command("list")
def list_command() -> None:
    """The projections of this release and the events each one handles."""
    table = Table("projection", "code version", "tables", "handles")
    for p in PROJECTIONS.values():
        table.add_row(
            p.name,
            str(p.version),
            ", ".join(t.name for t in p.group.tables),
            ", ".join(sorted(cls.__name__ for cls in p.handlers)),
        )
    console.print(table)


@projections_app.command("status")
def status_command() -> None:
    """Active table version, checkpoints, lag and versions on disk of every projection."""

    async def job(side: ReadSide) -> None:
        log_heads = await heads(side)
        table = Table(
            "projection", "active", "code", "shard", "checkpoint", "head", "lag", "versions"
        )
        for p in PROJECTIONS.values():
            async with side.pool.acquire() as conn:
                st = await projection_status(conn, p)
            for shard, head in log_heads.items():
                position = st.positions.get(shard, 0)
                table.add_row(
                    p.name if shard == 0 else "",
                    f"v{st.active}" if shard == 0 else "",
                    ("" if shard else f"{st.built_by}" + (" (stale)" if st.stale else "")),
                    str(shard),
                    str(position),
                    str(head),
                    str(max(head - position, 0)),
                    ", ".join(st.versions) if shard == 0 else "",
                )
        console.print(table)
        async with side.pool.acquire() as conn:
            for halt in await list_halts(conn):
                console.print(f"[red]STOPPED[/red] {halt.projection} shard {halt.shard} at"
                              f" position {halt.position} since {halt.since:%Y-%m-%d %H:%M:%S}:"
                              f" {halt.event_type} {halt.event_id} ({halt.kind}: {halt.error})")
            stopped = await mismatches(conn)
        for (name, shard), detail in sorted(stopped.items()):
            console.print(f"[red]{name} shard {shard} STOPPED:[/red] {detail}"
                          f" — run `eco2 projections rebuild {name}`")

    _run(job)


@projections_app.command("skip")
def skip_command(
    name: Annotated[str, typer.Argument(help="The projection that cannot apply the event.")],
    shard: Annotated[int, typer.Option(help="The shard of the event.")],
    position: Annotated[int, typer.Option(help="The event's position in the shard log.")],
    reason: Annotated[str, typer.Option(help="Why it is skipped (recorded).")],
    by: Annotated[str | None, typer.Option(help="Who decides (default: the OS user).")] = None,
) -> None:
    """Decide that NAME skips the event at --shard/--position (recorded with who, when, why).

    The live projector passes it on its next look; every rebuild and verify skips it too."""
    get_projection_or_exit(name)

    async def job(side: ReadSide) -> None:
        key = side.layout.keys(shard).events
        async with side.pool.acquire() as conn:
            try:
                decision = await decide_skip(
                    conn, side.redis, key, name, shard, position, reason=reason,
                    by=by or getpass.getuser(),
                )
            except SkipRefused as exc:
                console.print(f"[red]not recorded:[/red] {exc}")
                raise typer.Exit(1) from exc
        console.print(
            f"{name} skips {decision.event_type} {decision.event_id or '(no id)'} at shard"
            f" {shard} position {position}: decided by {decision.decided_by} at"
            f" {decision.decided_at:%Y-%m-%d %H:%M:%S %Z} ({decision.reason})"
        )

    _run(job)


@projections_app.command("skips")
def skips_command(
    name: Annotated[str | None, typer.Argument(help="One projection (default: all).")] = None,
) -> None:
    """Every recorded skip decision: which event, who, when, why."""

    async def job(side: ReadSide) -> None:
        table = Table("projection", "shard", "position", "event", "by", "at", "reason")
        async with side.pool.acquire() as conn:
            for d in await list_skips(conn, name):
                table.add_row(d.projection, str(d.shard), str(d.position),
                              f"{d.event_type} {d.event_id}", d.decided_by,
                              f"{d.decided_at:%Y-%m-%d %H:%M:%S}", d.reason)
        console.print(table)

    _run(job)


def get_projection_or_exit(name: str) -> None:
    if name not in PROJECTIONS:
        console.print(f"[red]unknown projection {name!r}[/red]; known: {', '.join(PROJECTIONS)}")
        raise typer.Exit(2)


@projections_app.command("rebuild")
def rebuild_command(
    names: Names,
    batch_size: Annotated[int, typer.Option(help="Log entries per transaction.")] = 5000,
    workers: Annotated[int, typer.Option(help="Replay processes (0: one per CPU).")] = 0,
) -> None:
    """Rebuild into new tables from position 0, then switch readers atomically."""

    async def job(side: ReadSide) -> None:
        for projection in select(_names(names)):
            with _progress_bar() as bar:
                report = await rebuild(
                    side,
                    projection,
                    batch_size=batch_size,
                    workers=workers or default_workers(side.layout.shards),
                    on_progress=_tracker(bar, f"rebuild {projection.name}"),
                )
            console.print(
                f"{report.name}: v{report.previous} → v{report.version}, {report.entries:,}"
                f" log entries ({report.applied:,} applied, {report.skipped:,} skipped) in"
                f" {report.seconds:.1f} s = {report.rate:,.0f} events/s"
            )

    _run(job)


def print_verify(report: VerifyReport) -> None:
    positions = ", ".join(f"{s}:{p}" for s, p in sorted(report.positions.items()))
    console.print(f"[bold]{report.name}[/] v{report.version} at positions {positions}")
    table = Table("table", "live rows", "rebuilt rows", "live md5", "rebuilt md5", "result")
    for t in report.tables:
        table.add_row(
            t.table,
            str(t.live_rows),
            str(t.rebuilt_rows),
            t.live_checksum,
            t.rebuilt_checksum,
            "[green]same" if t.clean else "[red]DIFFERENT",
        )
    console.print(table)
    for t in report.tables:
        for label, keys in (
            ("only in live", t.only_live),
            ("only in rebuild", t.only_rebuilt),
            ("different", t.different),
        ):
            for key in keys:
                console.print(f"  {t.table}: {label}: {key}")


@projections_app.command("verify")
def verify_command(names: Names) -> None:
    """Replay into scratch tables up to the live checkpoints and compare checksums.

    Exit code 1 when any table differs."""

    async def job(side: ReadSide) -> bool:
        clean = True
        for projection in select(_names(names)):
            with _progress_bar() as bar:
                report = await verify(
                    side, projection, on_progress=_tracker(bar, f"verify {projection.name}")
                )
            print_verify(report)
            clean = clean and report.clean
        return clean

    if not _run(job):
        raise typer.Exit(1)


@projections_app.command("run")
def run_command(
    names: Annotated[list[str] | None, typer.Argument(help="Projections (default: all).")] = None,
    batch_size: Annotated[int, typer.Option(help="Log entries per transaction.")] = 1000,
    lease_retry: Annotated[float, typer.Option(help="Seconds between lease attempts.")] = 2.0,
) -> None:
    """Run live projectors (shards are shared with other processes through leases)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    options = ProjectorOptions(batch_size=batch_size, lease_retry_s=lease_retry)

    async def main() -> None:
        settings = Settings.from_env()
        async with open_resources(settings) as resources:
            side = read_side(resources)
            service = ProjectorService(side, select(names or None), options=options)
            await run_until_signalled(service, settings)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


async def run_until_signalled(service: ProjectorService, settings: Settings) -> None:
    """Run ``service`` with its probes until SIGINT/SIGTERM, then drain it within the grace."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def ready() -> str | None:
        if (reason := await redis_ready(service.side.redis)) is not None:
            return reason
        if service.leases.member is None:
            return "no lease session with PostgreSQL yet"
        return None  # leases held, or waiting for free ones: both are a working projector

    async with serve_probes(settings, "projectors", ready) as probes:
        task = asyncio.create_task(service.run())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if task.done():
            task.result()
            return
        probes.draining = True
        await service.drain(settings.drain_grace_s)


if __name__ == "__main__":
    projections_app()
