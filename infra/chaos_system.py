"""The system a chaos run hurts: ``eco2 up`` as a child process, on its own embedded Redis and
PostgreSQL under a temporary data dir.

The run owns the two servers (never the shared ones), so it can crash Redis and stop Postgres
and bring them back on the same ports; ``eco2 up`` is told their URLs. The supervisor publishes
the pid of each process (``scan-0``, ``gateway``, …) in ``<data_dir>/processes.json``, which is
how a process is found to kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import httpx

from infra.embedded import EmbeddedPostgres, EmbeddedRedis
from infra.embedded._process import free_port
from infra.settings import Settings


class SystemDown(RuntimeError):
    """``eco2 up`` exited or did not come up."""


class ChaosSystem:
    """``async with ChaosSystem(data_dir, ...) as system``: everything running and healthy."""

    def __init__(self, data_dir: Path, *, latency: str, claim_idle_ms: int) -> None:
        self.data_dir = data_dir.resolve()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir / "eco2-up.log"
        base = Settings.from_env({"ECO2_DATA_DIR": str(self.data_dir)})
        self.redis = EmbeddedRedis(base)
        self.postgres = EmbeddedPostgres(base)
        self._servers = ExitStack()
        self._up: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {
            "ECO2_DATA_DIR": str(self.data_dir),
            "ECO2_HOST": "127.0.0.1",
            "ECO2_PORT": str(self.port),
            "ECO2_GRPC_PORT": str(free_port()),
            "ECO2_NAMESPACE": "eco2",
            "ECO2_DB_SCHEMA": "public",
            "ECO2_LATENCY": latency,
            "ECO2_CLAIM_IDLE_MS": str(claim_idle_ms),
            "ECO2_SCAN_WORKERS": "2",  # the kill of scan-0 leaves scan-1 going
            "ECO2_SECRET_KEY": secrets.token_urlsafe(32),
            # Every simulated user comes from 127.0.0.1 and submits faster than a person.
            "ECO2_RATE_LIMIT_IP": "0",
            "ECO2_RATE_LIMIT_USER": "0",
            "ECO2_LOG_LEVEL": "warning",
        }

    @property
    def settings(self) -> Settings:
        """The settings every process of the run sees (the URLs once the servers run)."""
        return Settings.from_env({**os.environ, **self.env})

    def auth(self, user_id: str) -> dict[str, str]:
        """Request headers acting as ``user_id``."""
        from gateway.auth_tokens import bearer

        return bearer(self.settings, user_id)

    async def __aenter__(self) -> ChaosSystem:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.env["REDIS_URL"] = await asyncio.to_thread(
                self._servers.enter_context, self.redis
            )
            self.env["DATABASE_URL"] = await asyncio.to_thread(
                self._servers.enter_context, self.postgres
            )
            self._start_up()
            await self._wait_up(within_s=180)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    def _start_up(self) -> None:
        with self.log_path.open("ab") as log:
            self._up = subprocess.Popen(
                [sys.executable, "-m", "infra.cli", "up"],
                env={**os.environ, **self.env}, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._up is not None and self._up.poll() is None:
            self._up.send_signal(signal.SIGTERM)  # unwinds like Ctrl-C: children stop in order
            try:
                await asyncio.to_thread(self._up.wait, 60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._up.pid, signal.SIGKILL)
                self._up.wait()
        await asyncio.to_thread(self._servers.close)

    # --- what the run looks at -------------------------------------------------------------
    def pids(self) -> dict[str, int]:
        """Process name (``scan-0``, ``gateway``, …) → pid of its running instance, as the
        supervisor last published it."""
        try:
            raw = json.loads((self.data_dir / "processes.json").read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in raw.items()}

    def names(self) -> set[str]:
        """The name of every process ``eco2 up`` runs with these settings."""
        from infra.cli import processes

        return {spec.name for spec in processes(self.settings)}

    def alive(self) -> bool:
        return self._up is not None and self._up.poll() is None

    def log_tail(self, lines: int = 40, width: int = 240) -> str:
        """The last warnings and errors of ``eco2 up``'s output (INFO lines left out, long
        lines cut), for a failing run's report."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        kept = [line[:width] for line in text.splitlines()
                if " INFO " not in line and '"level": "info"' not in line
                and not _traceback_line(line)]
        return "\n".join(kept[-lines:])

    async def _wait_up(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if not self.alive():
                    raise SystemDown(f"eco2 up exited:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    healthy = (await client.get(f"{self.base_url}/health")).status_code == 200
                    if healthy and self.names() <= set(self.pids()):
                        return
                if time.monotonic() > deadline:
                    raise SystemDown(f"eco2 up not healthy after {within_s:.0f}s:\n{self.log_tail()}")
                await asyncio.sleep(0.3)

    # --- how the run hurts it --------------------------------------------------------------
    async def signal_role(self, role: str, sig: signal.Signals) -> int:
        """Send ``sig`` to the running process named ``role`` (``scan-0``); returns its pid."""
        pid = self.pids().get(role)
        if pid is None:
            raise SystemDown(f"{role} is not running")
        os.kill(pid, sig)
        return pid

    async def wait_replaced(self, role: str, old_pid: int, within_s: float = 60) -> float:
        """Seconds until the supervisor runs a new process named ``role``."""
        began = time.monotonic()
        while self.pids().get(role) in (None, old_pid):
            if time.monotonic() - began > within_s or not self.alive():
                raise SystemDown(f"{role} was not restarted within {within_s:.0f}s")
            await asyncio.sleep(0.1)
        return time.monotonic() - began

    async def wait_serving(self, within_s: float = 60) -> float:
        """Seconds until the gateway answers ``/health`` with 200 again."""
        began = time.monotonic()
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.base_url}/health")).status_code == 200:
                        return time.monotonic() - began
                if time.monotonic() - began > within_s or not self.alive():
                    raise SystemDown(f"the gateway is not serving after {within_s:.0f}s")
                await asyncio.sleep(0.1)

    async def crash_redis(self) -> None:
        """kill -9 Redis; it comes back on the same port from its append-only file."""
        await asyncio.to_thread(self.redis.halt, signal.SIGKILL)
        await asyncio.to_thread(self.redis.resume)

    async def stop_postgres(self) -> None:
        """A fast shutdown of Postgres (sessions rolled back, connections refused)."""
        await asyncio.to_thread(self.postgres.halt, signal.SIGINT)

    async def start_postgres(self) -> None:
        await asyncio.to_thread(self.postgres.resume)


    def errors(self, limit: int = 20, width: int = 2000) -> list[str]:
        """The error lines of ``eco2 up``'s output (unhandled request errors with their
        traceback, crashed handlers), for a failing run's report."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        found = [line[:width] for line in text.splitlines()
                 if '"level": "error"' in line or " ERROR " in line]
        return found[-limit:]


def _traceback_line(line: str) -> bool:
    """A continuation line of a traceback the supervisor forwarded (``name | <text>``)."""
    text = line.partition("| ")[2]
    return text.startswith((" ", "Traceback", "^"))
