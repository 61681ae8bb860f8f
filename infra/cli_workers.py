"""Command groups of the handler processes: ``eco2 worker scan|reward|chat|snapshot`` and
``eco2 grpc characters``.

Registered in ``infra.cli.SUBCOMMANDS``; ``eco2 up`` runs the same commands as child processes.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from commands.workers import WorkerKind
from infra.heap import freeze_startup_heap
from infra.probes import serve_probes
from infra.settings import Settings, SettingsError
from infra.worker_process import run_worker

console = Console(highlight=False, stderr=True)
T = TypeVar("T")

worker_app = typer.Typer(
    help="Run a handler worker (consumer group) until Ctrl-C.", no_args_is_help=True
)
grpc_app = typer.Typer(help="Run a gRPC service until Ctrl-C.", no_args_is_help=True)


def _settings() -> Settings:
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when it is installed (a cheaper event loop), else asyncio's;
    what the process built before is frozen out of the garbage collector's walks."""
    freeze_startup_heap()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _run_worker(kind: WorkerKind) -> None:
    settings = _settings()
    if settings.redis_url is None:
        console.print("[red]REDIS_URL is not set[/red] (run `eco2 up`, or `eco2 services` first)")
        raise typer.Exit(2)
    run_async(run_worker(kind, settings))


@worker_app.command("scan")
def worker_scan() -> None:
    """The scan chain: RequestScan commands → queued, vision, rule, answer events."""
    _run_worker("scan")


@worker_app.command("reward")
def worker_reward() -> None:
    """The reward handler: AnswerCompleted events → ownership, reward, done."""
    _run_worker("reward")


@worker_app.command("chat")
def worker_chat() -> None:
    """The chat turn handler: SendChatMessage / ProvideInput commands → a turn of the graph."""
    _run_worker("chat")


@worker_app.command("snapshot")
def worker_snapshot() -> None:
    """The snapshot projector: job events → {tag}:state:<job>, then publish to {tag}:live."""
    _run_worker("snapshot")


@grpc_app.command("characters")
def grpc_characters() -> None:
    """The character service (catalog, match, default) on ECO2_HOST:ECO2_GRPC_PORT."""
    from agents.knowledge import KnowledgeBase
    from characters.launcher import accepts_connections, run_service

    settings = _settings()
    characters = KnowledgeBase.load().characters()

    async def ready() -> str | None:
        return await accepts_connections(settings.host, settings.grpc_port)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with serve_probes(settings, "characters", ready) as probes:

            def drain() -> None:
                probes.draining = True

            await run_service(
                characters, stop, host=settings.host, port=settings.grpc_port,
                grace_s=settings.drain_grace_s, on_drain=drain,
            )

    asyncio.run(main())
