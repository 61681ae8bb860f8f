"""The process stacks the benchmarks and e2e tests start: each child is a real ``eco2`` process
(or uvicorn) on one fresh namespace, so a test can kill one and watch the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis, open_redis
from infra.embedded._process import free_port
from infra.settings import Settings
from infra.supervisor import BACKGROUND_ROLES, role_of


class ScanStack:
    """Gateway, character service and scan/reward workers as child processes on one namespace.

    Used by ``eco2 bench scan`` and the scan e2e tests; ``kill`` sends a signal to one child (``-9``
    mid-job), leaving the others to claim its work.
    """

    def __init__(
        self, settings: Settings, *, namespace: str, latency: str = "none",
        scan_workers: int = 1, reward_workers: int = 1, handler_workers: int = 64,
        claim_idle_ms: int = 30_000, data_dir: Path | None = None,
    ) -> None:
        if settings.redis_url is None:
            raise ValueError("the stack needs REDIS_URL")
        self.settings = settings
        self.namespace = namespace
        self.layout = Layout(namespace, settings.shards)
        self.port, self.grpc_port = free_port(), free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._tmp = tempfile.TemporaryDirectory(prefix="eco2-stack-")
        self.data_dir = data_dir or Path(self._tmp.name)
        self.env = {
            **os.environ,
            "REDIS_URL": settings.redis_url,
            "ECO2_NAMESPACE": namespace,
            "ECO2_SHARDS": str(settings.shards),
            "ECO2_LATENCY": latency,
            "ECO2_HANDLER_WORKERS": str(handler_workers),
            "ECO2_CLAIM_IDLE_MS": str(claim_idle_ms),
            "ECO2_CLAIM_INTERVAL_S": "0.2",
            "ECO2_HOST": "127.0.0.1",
            "ECO2_PORT": str(self.port),
            "ECO2_GRPC_PORT": str(self.grpc_port),
            "ECO2_DATA_DIR": str(self.data_dir),
            "ECO2_LOG_LEVEL": "warning",
            "ECO2_RATE_LIMIT_IP": "0",  # every simulated user comes from 127.0.0.1
        }
        self.env.pop("DATABASE_URL", None)  # the scan path needs no read models
        cli = (sys.executable, "-m", "infra.cli")
        self.commands: dict[str, tuple[str, ...]] = {
            "grpc": (*cli, "grpc", "characters"),
            "gateway": (
                sys.executable, "-m", "uvicorn", "infra.gateway_app:create_app", "--factory",
                "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                "--no-access-log", "--timeout-keep-alive", "75",
                # Thousands of simulated users connect within the ramp: uvicorn's default
                # backlog (2048) overflowed, and a dropped SYN is retried after 1, 3, 7 s.
                "--backlog", "8192",
            ),
        }
        for i in range(scan_workers):
            self.commands[f"scan-{i}"] = (*cli, "worker", "scan")
        for i in range(reward_workers):
            self.commands[f"reward-{i}"] = (*cli, "worker", "reward")
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.redis: AsyncRedis  # opened on entry (a cluster client on a Redis Cluster)

    async def open_redis(self) -> AsyncRedis:
        """The stack's own client (idempotent); ``__aenter__`` calls it."""
        if not hasattr(self, "redis"):
            self.redis = await open_redis(self.env["REDIS_URL"], decode_responses=True)
        return self.redis

    def auth(self, user_id: str) -> dict[str, str]:
        """Request headers acting as ``user_id`` (a bearer token the gateway accepts)."""
        from gateway.auth_tokens import bearer

        return bearer(Settings.from_env(self.env), user_id)

    def start(self, name: str) -> None:
        log = (Path(self._tmp.name) / f"{name}.log").open("ab")
        # As ``eco2 up`` runs them: the workers behind the request path (``infra.cli``).
        worker = role_of(name) in BACKGROUND_ROLES
        nice = self.settings.worker_nice if worker else 0  # on top of the bench's own
        self.processes[name] = subprocess.Popen(
            self.commands[name], env=self.env, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        self.processes[name].send_signal(sig)
        self.processes[name].wait(timeout=10)

    def log_of(self, name: str) -> str:
        path = Path(self._tmp.name) / f"{name}.log"
        return path.read_text("utf-8", errors="replace")[-3000:] if path.exists() else ""

    async def __aenter__(self) -> ScanStack:
        await self.open_redis()
        try:
            self.start("grpc")
            await self._wait(lambda: _accepts(self.grpc_port), "grpc")
            for name in self.commands:
                if name != "grpc":
                    self.start(name)
            await self._wait(lambda: _accepts(self.port), "gateway")
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    start_timeout_s = 90.0  # per process: a ceiling, a loaded machine may need it

    async def _wait(self, ready: Callable[[], bool], name: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not ready():
            if self.processes[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{self.log_of(name)}")
            await asyncio.sleep(0.1)

    async def wait_for_group(
        self, group: str, process: str, *, source: str = "commands", within_s: float = 60
    ) -> None:
        """Until ``group`` exists on every shard's ``source`` stream: a worker of it reads.
        What is appended before is not lost (groups start at the stream's first entry); a
        test waits so that its own time limits do not include the workers' start."""
        deadline = time.monotonic() + within_s
        for keys in self.layout.all():
            stream = getattr(keys, source)
            while True:
                try:
                    names = {g["name"] for g in await self.redis.xinfo_groups(stream)}
                except Exception:
                    names = set()
                if group in names:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"group {group} did not start:\n" + self.log_of(process))
                await asyncio.sleep(0.2)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.processes.values():
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if hasattr(self, "redis"):
            await self.redis.aclose()
        self._tmp.cleanup()

    async def forget(self) -> None:
        """Delete every key of the stack's namespace."""
        client = await open_redis(self.env["REDIS_URL"])
        try:
            keys = [k async for k in client.scan_iter(match=f"{{{self.namespace}:*", count=1000)]
            for start in range(0, len(keys), 500):
                await client.delete(*keys[start : start + 500])
        finally:
            await client.aclose()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


class ChatStack(ScanStack):
    """Gateway, character service, chat worker(s) and the snapshot projector (no scan workers)."""

    def __init__(self, settings: Settings, *, namespace: str, latency: str, chat_workers: int,
                 handler_workers: int) -> None:
        super().__init__(settings, namespace=namespace, latency=latency, scan_workers=0,
                         reward_workers=0, handler_workers=handler_workers)
        # Every simulated user comes from 127.0.0.1: the per-IP limit would measure itself.
        self.env.update({"ECO2_RATE_LIMIT_IP": "0", "ECO2_RATE_LIMIT_USER": "0"})
        cli = (sys.executable, "-m", "infra.cli")
        for i in range(chat_workers):
            self.commands[f"chat-{i}"] = (*cli, "worker", "chat")
        self.commands["snapshot"] = (*cli, "worker", "snapshot")  # as `eco2 up` runs it

    async def wait_for_workers(self, within_s: float = 60) -> None:
        """Until a chat worker reads (see ``ScanStack.wait_for_group``). The snapshot
        projector needs no wait: its group starts at each log's first entry."""
        await self.wait_for_group("chat", "chat-0", within_s=within_s)
