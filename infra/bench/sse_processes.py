"""The processes of ``eco2 bench sse``: the gateway and the snapshot projector it starts as
children (``python -m infra.bench.sse_processes`` runs the projector), and the figures read
from them (Redis connections, CPU)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

import schemas
from eventstore.keys import Layout
from eventstore.redis_client import open_redis
from infra.settings import Settings

# What turns tracing on in a child process (infra.settings): an untraced run strips them.
OTEL_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                  "OTEL_TRACES_EXPORTER")


class Children:
    """The gateway and the snapshot projector as child processes."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env, self.port = env, port
        self.logs = tempfile.TemporaryDirectory(prefix="eco2-bench-sse-")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        commands = {
            "gateway": (sys.executable, "-m", "uvicorn", "infra.gateway_app:create_app", "--factory",
                        "--host", "127.0.0.1", "--port", str(self.port), "--log-level",
                        "warning", "--no-access-log", "--backlog", "4096"),
            "projector": (sys.executable, "-m", "infra.bench.sse_processes"),
        }
        for name, command in commands.items():
            log = (Path(self.logs.name) / f"{name}.log").open("ab")
            self.procs[name] = subprocess.Popen(command, env=self.env, stdout=log, stderr=log)

    def log(self, name: str) -> str:
        return (Path(self.logs.name) / f"{name}.log").read_text("utf-8", "replace")[-3000:]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.logs.cleanup()


async def wait_ready(http: httpx.AsyncClient, children: Children) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/ready")).status_code == 200:
                return
        if time.monotonic() > deadline or children.procs["gateway"].poll() is not None:
            code = children.procs["gateway"].poll()
            raise RuntimeError(f"gateway did not start (exit {code}):\n{children.log('gateway')}")
        await asyncio.sleep(0.2)


def psutil_module() -> Any:
    """psutil when installed (only for the process figures), else None."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        return None
    return psutil


def redis_connections_of(pid: int, redis_url: str) -> int | None:
    psutil = psutil_module()
    if psutil is None:
        return None
    port = urlsplit(redis_url).port or 6379
    conns = psutil.Process(pid).net_connections(kind="tcp")
    return sum(1 for c in conns if c.raddr and c.raddr.port == port and c.status == "ESTABLISHED")


def cpu_sampler(pid: int) -> Callable[[], float | None]:
    psutil = psutil_module()
    if psutil is None:
        return lambda: None
    proc = psutil.Process(pid)
    proc.cpu_percent(None)
    return lambda: float(proc.cpu_percent(None))


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def project() -> None:
    """The snapshot projector under the consumer runner (the bench's child process)."""
    import signal

    from eventstore.consumer import RunnerOptions
    from eventstore.runtime import Runner
    from infra.telemetry import configure_tracing
    from projections.snapshot import snapshot_subscription

    settings = Settings.from_env()
    assert settings.redis_url is not None
    shutdown = configure_tracing("worker-snapshot", settings)  # as `eco2 worker snapshot`
    redis = await open_redis(settings.redis_url, decode_responses=True)
    layout = Layout(settings.namespace, settings.shards)
    runner = Runner(redis, layout, schemas.registry, snapshot_subscription(redis, layout),
                    options=RunnerOptions(block_ms=1000))
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, runner.stop)
    try:
        await runner.run()
    finally:
        shutdown()  # flushes the spans still queued


if __name__ == "__main__":
    asyncio.run(project())
