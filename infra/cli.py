"""The ``eco2`` command line. ``eco2 up`` runs the whole system on one machine.

Command groups live in their own modules (``infra.cli_*``, ``infra.bench``, ``infra.importers``)
and are registered in :data:`SUBCOMMANDS` below, one line each.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib
import signal
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Annotated

import httpx
import typer
from rich.console import Console

from eventstore.memory_policy import EvictingRedis, check_memory_policy
from infra.embedded import EmbeddedServiceError, resolve_services
from infra.embedded._process import free_port
from infra.lazy_group import lazy_typer
from infra.settings import Settings, SettingsError
from infra.supervisor import BACKGROUND_ROLES, ProcessSpec, Supervisor, role_of
from infra.tls import certificate_paths, ensure_local_certificate

app = typer.Typer(
    name="eco2",
    help="Eco² — event-sourced backend of an AI recycling assistant.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(highlight=False)

# Command groups in their own modules: name -> "module:attribute" of a typer.Typer.
SUBCOMMANDS: dict[str, str] = {
    "dlq": "infra.cli_dlq:dlq_app",
    "projections": "infra.cli_projections:projections_app",
    "worker": "infra.cli_workers:worker_app",
    "grpc": "infra.cli_workers:grpc_app",
    "import": "infra.importers.cli:import_app",
    "chat": "infra.cli_chat:chat_app",
    "eval": "infra.cli_eval:eval_app",
    "archive": "infra.cli_archive:archive_app",
    "export": "infra.cli_archive:export_app",
    "chaos": "infra.cli_chaos:chaos_app",
    "docs": "infra.cli_docs:docs_app",
}


def child_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child's ``Settings.from_env()`` agree with ours.

    Only what this run decided (service URLs, data dir, address) is set; everything else the
    children inherit from our own environment.
    """
    env = {
        "ECO2_DATA_DIR": str(settings.data_dir),
        "ECO2_HOST": settings.host,
        "ECO2_PORT": str(settings.port),
    }
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    if settings.tls:
        env["ECO2_TLS"] = "true"
    return env


def processes(settings: Settings) -> list[ProcessSpec]:
    """Every process ``eco2 up`` runs (the one place to add workers and projectors)."""
    env = child_env(settings)
    python = sys.executable
    eco2 = (python, "-m", "infra.cli")
    gateway: tuple[str, ...] = (
        python, "-m", "uvicorn", "infra.gateway_app:create_app", "--factory",
        "--host", settings.host, "--port", str(settings.port), "--log-level", settings.log_level,
        "--no-access-log",  # the edge middleware writes one JSON line per request
    )
    if settings.tls:  # ``up`` made the files first (infra.tls.ensure_local_certificate)
        cert = certificate_paths(settings.data_dir)
        gateway += ("--ssl-certfile", str(cert.cert), "--ssl-keyfile", str(cert.key))
    # The background roles run at a lower CPU priority (ECO2_WORKER_NICE): at 5,000 scanning
    # users on 2 cores the POST's Redis round trips then stop waiting for a core behind them
    # (BENCHMARKS 2026-12-07: POST p95 ~1.1 s → 0.3-0.4 s), while the workers' own hops wait
    # more, their time being mostly the model's.
    specs = [
        ProcessSpec(name="gateway", argv=gateway, env=env),
        ProcessSpec(name="characters", argv=(*eco2, "grpc", "characters"), env=env),
        *(ProcessSpec(name=f"scan-{i}", argv=(*eco2, "worker", "scan"), env=env)
          for i in range(settings.scan_workers)),
        ProcessSpec(name="reward", argv=(*eco2, "worker", "reward"), env=env),
        ProcessSpec(name="chat", argv=(*eco2, "worker", "chat"), env=env),
        ProcessSpec(name="snapshot", argv=(*eco2, "worker", "snapshot"), env=env),
        ProcessSpec(name="projectors", argv=(*eco2, "projections", "run"), env=env),
        ProcessSpec(name="archiver", argv=(*eco2, "archive", "run"), env=env),
    ]
    return [dataclasses.replace(s, nice=settings.worker_nice) if role_of(s.name) in BACKGROUND_ROLES
            else s for s in specs]


def with_health_ports(settings: Settings, specs: list[ProcessSpec]) -> list[ProcessSpec]:
    """``specs`` with a free port each for ``/healthz``, ``/readyz`` and ``/metrics``
    (``ECO2_HEALTH_PORT``); ``health_urls`` lists them."""
    host = _probe_host(settings)
    return [
        dataclasses.replace(s, env={**s.env, "ECO2_HEALTH_PORT": str(free_port(host))})
        for s in specs
    ]


def _probe_host(settings: Settings) -> str:
    return "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host


def health_urls(settings: Settings, specs: list[ProcessSpec]) -> dict[str, str]:
    """Process name (``scan-0``, ``gateway``, …) → base URL of its probes (``/healthz``,
    ``/readyz``, ``/metrics``)."""
    host = _probe_host(settings)
    return {s.name: f"http://{host}:{s.env['ECO2_HEALTH_PORT']}" for s in specs}


async def prepare_read_models(settings: Settings) -> None:
    """Apply migrations, seed the character catalog and (when empty) the sample locations
    and news, and rebuild projections an older release built, before any process starts."""
    import asyncpg

    from agents.knowledge import KnowledgeBase
    from infra.bootstrap import open_resources, read_side
    from infra.importers.samples import load_samples
    from projections.builtin import select
    from projections.rebuild import rebuild_stale
    from readmodels.catalog import seed_catalog
    from readmodels.migrate import migrate

    pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=2, timeout=10,
        server_settings={"search_path": settings.db_schema},
    )
    try:
        await migrate(pool)
        await seed_catalog(pool, KnowledgeBase.load().characters())
        await load_samples(pool)  # only into an empty locations table
    finally:
        await pool.close()
    async with open_resources(settings, redis_connections=8) as resources:
        for report in await rebuild_stale(read_side(resources), select()):
            console.print(
                f"rebuilt {report.name} (v{report.previous} → v{report.version}):"
                f" {report.entries:,} events in {report.seconds:.1f} s"
            )


def load_settings(
    *, host: str | None = None, port: int | None = None, data_dir: Path | None = None,
    tls: bool | None = None,
) -> Settings:
    """Settings from the environment with command-line overrides; exits 2 on a bad value."""
    # Overrides go through the environment so they are checked like it (a non-loopback host
    # needs ECO2_SECRET_KEY; the generated secret lives in the data dir that is used).
    given = {"ECO2_HOST": host, "ECO2_PORT": port, "ECO2_DATA_DIR": data_dir, "ECO2_TLS": tls}
    try:
        return Settings.from_env(overrides={k: str(v) for k, v in given.items() if v is not None})
    except SettingsError as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _services(settings: Settings) -> Iterator[Settings]:
    """Resolve Redis/Postgres, print what is used, stop embedded ones on exit.

    SIGTERM is turned into KeyboardInterrupt so a ``kill`` unwinds like Ctrl-C and the embedded
    servers are stopped rather than orphaned.
    """
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        resolved, stack = resolve_services(settings)
    except EmbeddedServiceError as exc:
        console.print(f"[red]cannot start embedded services:[/red] {exc}")
        raise typer.Exit(1) from exc
    with stack:
        for name, given, used in (
            ("redis", settings.redis_url, resolved.redis_url),
            ("postgres", settings.database_url, resolved.database_url),
        ):
            origin = "configured" if given else f"embedded, data in {resolved.data_dir}"
            console.print(f"[bold]{name:<9}[/bold] {used}  [dim]({origin})[/dim]", soft_wrap=True)
        try:
            yield resolved
        finally:
            # asyncio.run() restores default handlers; keep SIGTERM graceful while we clean up.
            signal.signal(signal.SIGTERM, _raise_interrupt)


def gateway_url(settings: Settings) -> str:
    """Where ``up`` says the gateway is (https with ``--tls``: its certificate names localhost)."""
    if settings.tls:
        host = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0", "::") else settings.host
        return f"https://{host}:{settings.port}"
    return f"http://{settings.host}:{settings.port}"


async def _announce_when_healthy(settings: Settings) -> None:
    base = gateway_url(settings)
    # --tls: trust exactly our local CA for this check
    verify: ssl.SSLContext | bool = True
    if settings.tls:
        verify = ssl.create_default_context(cafile=str(certificate_paths(settings.data_dir).ca))
    async with httpx.AsyncClient(timeout=1.0, verify=verify) as client:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/health")).status_code == 200:
                    console.print(f"[bold green]Eco² is up: {base}[/bold green]  (Ctrl-C to stop)")
                    return
            await asyncio.sleep(0.2)


async def _refuse_evicting_redis(settings: Settings) -> None:
    """Before anything is written: a Redis that may evict keys is refused (``EvictingRedis``)."""
    from infra.bootstrap import redis_client

    redis = await redis_client(settings, max_connections=2)
    try:
        await check_memory_policy(redis)
    finally:
        await redis.aclose()


async def _run_processes(settings: Settings) -> int:
    await _refuse_evicting_redis(settings)
    await prepare_read_models(settings)
    if settings.tls:
        cert = ensure_local_certificate(settings.data_dir, settings.host)
        console.print(f"[bold]tls[/bold]      {cert.cert}  [dim](local CA: {cert.ca})[/dim]",
                      soft_wrap=True)
    supervisor = Supervisor(
        with_health_ports(settings, processes(settings)),
        pid_file=settings.data_dir / "processes.json",
    )
    for name, url in health_urls(settings, list(supervisor.specs)).items():
        console.print(f"[dim]{name:<11} {url}/healthz /readyz /metrics[/dim]", soft_wrap=True)
    announce = asyncio.create_task(_announce_when_healthy(settings))
    try:
        return await supervisor.run()
    finally:
        announce.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await announce


HostOption = Annotated[str | None, typer.Option(help="Address to serve on [ECO2_HOST].")]
PortOption = Annotated[int | None, typer.Option(help="Port to serve on [ECO2_PORT].")]
DataDirOption = Annotated[
    Path | None, typer.Option(help="Folder for embedded Redis/Postgres data [ECO2_DATA_DIR].")
]
TlsOption = Annotated[bool | None, typer.Option(
    "--tls/--no-tls",
    help="Serve the gateway over HTTPS with a local certificate kept in the data dir [ECO2_TLS].",
    show_default=False,
)]


@app.command()
def migrate() -> None:
    """Prepare the read models as `eco2 up` does before starting anything (migrations, catalog,
    sample data into empty tables, rebuilds of projections an older release built): the
    deployment's migration Job. Needs REDIS_URL and DATABASE_URL."""
    settings = load_settings()
    if settings.redis_url is None or settings.database_url is None:
        console.print("[red]REDIS_URL and DATABASE_URL must be set[/red]")
        raise typer.Exit(2)
    asyncio.run(prepare_read_models(settings))
    console.print("read models are ready")


@app.command()
def gateway(host: HostOption = None, port: PortOption = None) -> None:
    """Run the gateway (HTTP API, SSE, web pages) alone, as containers do (uvicorn)."""
    from infra.gateway_process import main

    main(load_settings(host=host, port=port))


@app.command()
def up(
    host: HostOption = None, port: PortOption = None, data_dir: DataDirOption = None,
    tls: TlsOption = None,
) -> None:
    """Run everything on this machine until Ctrl-C.

    Uses REDIS_URL / DATABASE_URL when set, otherwise starts embedded Redis (AOF on) and
    PostgreSQL under the data dir. ``--tls``: the gateway serves HTTPS (local certificate).
    """
    settings = load_settings(host=host, port=port, data_dir=data_dir, tls=tls)
    code = 130
    with contextlib.suppress(KeyboardInterrupt), _services(settings) as resolved:
        try:
            code = asyncio.run(_run_processes(resolved))
        except EvictingRedis as exc:
            console.print(f"[red]refusing to start:[/red] {exc}")
            code = 1
    raise typer.Exit(code)


ClusterOption = Annotated[
    bool, typer.Option("--cluster", help="Embedded Redis as a local 3-master + 3-replica cluster.")
]


@app.command()
def services(data_dir: DataDirOption = None, cluster: ClusterOption = False) -> None:
    """Start only Redis and PostgreSQL (embedded unless configured), print their URLs, wait."""
    settings = load_settings(data_dir=data_dir)
    with contextlib.ExitStack() as stack:
        if cluster and settings.redis_url is None:
            from infra.embedded.redis_cluster import EmbeddedRedisCluster

            signal.signal(signal.SIGTERM, _raise_interrupt)
            nodes = EmbeddedRedisCluster(settings.with_(data_dir=settings.data_dir.resolve()))
            try:
                url = stack.enter_context(nodes)
            except (EmbeddedServiceError, KeyboardInterrupt) as exc:
                console.print(f"[red]cannot start the local Redis Cluster:[/red] {exc}")
                raise typer.Exit(1) from exc
            console.print(f"[bold]cluster[/bold]   ports {', '.join(map(str, nodes.ports))}"
                          f" (3 masters + 3 replicas, data in {nodes.home})", soft_wrap=True)
            settings = settings.with_(redis_url=url)
        _wait_for_services(settings)


def _wait_for_services(settings: Settings) -> None:
    with contextlib.suppress(KeyboardInterrupt), _services(settings) as resolved:
        console.print(f"export REDIS_URL={resolved.redis_url}", soft_wrap=True)
        console.print(f"export DATABASE_URL={resolved.database_url}", soft_wrap=True)
        console.print("[dim]Ctrl-C to stop[/dim]")
        while True:
            signal.pause()


# Long-running process commands whose logs and traces are configured here (service name).
_SERVICES = {("worker", kind): f"worker-{kind}" for kind in ("scan", "reward", "chat", "snapshot")}
_SERVICES |= {("grpc", "characters"): "characters", ("projections", "run"): "projectors",
              ("archive", "run"): "archiver"}


@app.callback()
def _telemetry(ctx: typer.Context) -> None:
    """Configure logging and tracing once for the process a long-running command starts."""
    words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    service = _SERVICES.get((ctx.invoked_subcommand or "", words[1] if len(words) > 1 else ""))
    if service is None:
        return
    try:
        settings = Settings.from_env()
    except SettingsError:
        return  # the command itself reports the configuration error
    from infra.telemetry import configure_logging, configure_tracing

    configure_logging(service, level=settings.log_level, as_json=settings.log_json)
    ctx.call_on_close(configure_tracing(service, settings))


def _load_typer(target: str) -> typer.Typer:
    module_name, _, attribute = target.partition(":")
    group = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(group, typer.Typer):
        raise TypeError(f"{target} is not a typer.Typer")
    return group


for _name, _target in SUBCOMMANDS.items():
    app.add_typer(_load_typer(_target), name=_name)
# The benchmarks are imported only by ``eco2 bench …`` (see infra.lazy_group).
app.add_typer(
    lazy_typer("infra.bench.cli:bench_app", help="Benchmarks: min / median / max over --repeat "
               "repetitions, each against its baseline; --write appends them to BENCHMARKS.md."),
    name="bench",
)


if __name__ == "__main__":
    app()
