"""The processes of ``eco2 bench sse``: the gateway and the snapshot projector it starts as
children (``python -m infra.bench.sse_processes`` runs the projector), the SSE client processes
(``infra.bench.sse_clients``), and the figures read from them (Redis connections, CPU, memory)."""

from __future__ import annotations

import asyncio
import contextlib
import json
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

STREAMS_PER_CLIENT_PROCESS = 2500  # one client process's share of the streams, by default

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


class ProcessGauge:
    """Resident memory and CPU time of one process, sampled between phases of the bench."""

    def __init__(self, pid: int) -> None:
        psutil = psutil_module()
        self.proc = psutil.Process(pid) if psutil is not None else None

    def sample(self) -> tuple[float, float, float]:
        """(monotonic time, RSS bytes, user + system CPU seconds); NaNs without psutil."""
        if self.proc is None:
            return time.perf_counter(), float("nan"), float("nan")
        cpu = self.proc.cpu_times()
        return time.perf_counter(), float(self.proc.memory_info().rss), cpu.user + cpu.system

    @staticmethod
    def between(
        a: tuple[float, float, float], b: tuple[float, float, float], phase: str, streams: int
    ) -> dict[str, float]:
        """The phase's figures: CPU seconds, % of a core, RSS growth, each also per stream."""
        seconds, rss, cpu = b[0] - a[0], b[1] - a[1], b[2] - a[2]
        return {
            f"{phase} s": seconds,
            f"{phase} CPU s": cpu,
            f"{phase} CPU %": 100 * cpu / seconds if seconds > 0 else float("nan"),
            f"{phase} CPU ms per stream": 1000 * cpu / streams,
            f"{phase} RSS growth MiB": rss / 2**20,
            f"{phase} RSS KiB per stream": rss / 1024 / streams,
            f"{phase} RSS MiB at end": b[1] / 2**20,
        }


class SseClients:
    """The streams spread over client processes (``infra.bench.sse_clients``); ``results``
    gives, per stream in the order given, the ids received and their receive times."""

    def __init__(self, port: int, streams: list[tuple[str, str]], processes: int) -> None:
        self.port = port
        self.streams = streams
        self.processes = max(1, min(processes, len(streams)))
        self.tmp = tempfile.TemporaryDirectory(prefix="eco2-bench-sse-clients-")
        self.procs: list[asyncio.subprocess.Process] = []
        self.errors: list[str] = []

    def share(self, k: int) -> list[tuple[str, str]]:
        return self.streams[k::self.processes]

    async def start(self, timeout_s: float) -> None:
        """Start the processes; returns once every stream has its job's first event."""
        handshakes = max(10, 100 // self.processes)
        for k in range(self.processes):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "infra.bench.sse_clients", str(Path(self.tmp.name) / f"{k}"),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({
                "port": self.port, "streams": self.share(k), "handshakes": handshakes,
                "deadline_s": timeout_s + 900,
            }).encode())
            proc.stdin.close()
            self.procs.append(proc)
        async with asyncio.timeout(timeout_s):
            for k, proc in enumerate(self.procs):
                assert proc.stdout is not None
                line = (await proc.stdout.readline()).decode().split()
                opened = int(line[1]) if len(line) == 2 and line[0] == "ready" else -1
                if opened != len(self.share(k)):
                    raise RuntimeError(f"client process {k} opened {opened} of "
                                       f"{len(self.share(k))} streams")

    def cpu_sampler(self) -> Callable[[], float | None]:
        """% of a core used by all client processes since this call."""
        samplers = [cpu_sampler(proc.pid) for proc in self.procs]

        def total() -> float | None:
            values = [s() for s in samplers]
            return None if any(v is None for v in values) else sum(v or 0.0 for v in values)

        return total

    async def results(self, timeout_s: float) -> list[tuple[list[int], list[float]]]:
        """Wait for every stream to end (or the processes' deadline); their ids and times."""
        async with asyncio.timeout(timeout_s):
            for proc in self.procs:
                await proc.wait()
        shares = []
        for k in range(self.processes):
            found = json.loads((Path(self.tmp.name) / f"{k}").read_text())
            shares.append(list(zip(found["ids"], found["times"], strict=True)))
            if found["error_count"]:
                self.errors.append(f"client process {k}: {found['error_count']} streams ended "
                                   f"with an error, e.g. {found['errors'][:2]}")
        out: list[tuple[list[int], list[float]]] = [([], [])] * len(self.streams)
        for k, share in enumerate(shares):
            out[k::self.processes] = share
        return out

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        self.tmp.cleanup()


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
