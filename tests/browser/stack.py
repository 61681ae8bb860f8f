"""The system as ``eco2 up`` runs it, for browser tests: ``infra.cli.processes()`` under the
real ``Supervisor``, on a free port, a fresh Redis namespace and a fresh Postgres schema.

The supervisor runs in a thread with its own event loop, so the (synchronous) Playwright tests
can kill a child by its pid and watch the supervisor restart it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
import redis

from gateway.auth_tokens import bearer
from infra.cli import prepare_read_models, processes
from infra.settings import Settings
from infra.supervisor import RestartPolicy, Supervisor
from readmodels.db import quote_ident

ADMIN = "ops-admin"  # ECO2_ADMINS of the stack (a dev sign-in nickname)


def in_thread(job: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(job())`` in a thread of its own: Playwright's sync API keeps an event
    loop running in the test's thread, where ``asyncio.run`` is refused."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(job())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Stack:
    """Gateway, character service, workers and projectors, supervised, until ``stop``."""

    def __init__(self, redis_url: str, database_url: str, folder: Path) -> None:
        self.namespace = f"b{uuid.uuid4().hex[:10]}"
        self.schema = self.namespace
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.settings = Settings.from_env({}).with_(
            redis_url=redis_url, database_url=database_url, port=self.port,
            data_dir=folder / "data", namespace=self.namespace, db_schema=self.schema,
            grpc_port=free_port(), log_level="warning", secret_key="browser-tests-secret-0123456789",
            admins=(ADMIN,),
        )
        self.env = {
            "ECO2_NAMESPACE": self.namespace,
            "ECO2_DB_SCHEMA": self.schema,
            "ECO2_GRPC_PORT": str(self.settings.grpc_port),
            "ECO2_SECRET_KEY": self.settings.secret_key,
            "ECO2_ADMINS": ADMIN,
            # Production model timings (vision 5.2 s, answer 3.7 s streamed): stages and
            # tokens arrive slowly enough to be watched, and a stream can be cut mid-answer.
            "ECO2_LATENCY": "production",
            "ECO2_LOG_LEVEL": "warning",
            "ECO2_LOG_JSON": "false",
            "ECO2_RATE_LIMIT_IP": "0",
            "ECO2_CLAIM_IDLE_MS": "5000",
        }
        self.log_path = folder / "stack.log"
        self._log: IO[str] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.supervisor: Supervisor | None = None

    # -- life cycle -------------------------------------------------------------------------

    def start(self, timeout_s: float = 90.0) -> None:
        in_thread(self._prepare)
        specs = [dataclasses.replace(s, env={**s.env, **self.env}) for s in processes(self.settings)]
        self._log = self.log_path.open("w", encoding="utf-8")
        # A quick restart after a kill (the tests kill the gateway on purpose).
        self.supervisor = Supervisor(specs, output=self._log,
                                     policy=RestartPolicy(backoff_initial_s=0.2, grace_s=5))
        self._thread = threading.Thread(target=self._run, name="eco2-supervisor", daemon=True)
        self._thread.start()
        self.wait_ready(timeout_s)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            assert self.supervisor is not None
            self._loop.run_until_complete(self.supervisor.run(handle_signals=False))
        finally:
            self._loop.close()

    async def _prepare(self) -> None:
        """What ``eco2 up`` does first: migrations, the catalog, the sample collection points."""
        await prepare_read_models(self.settings)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"the stack did not become ready; see {self.log_path}")

    def stop(self) -> None:
        if self.supervisor is not None and self._loop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.supervisor.stop)
        if self._thread is not None:
            self._thread.join(30)
        if self._log is not None:
            self._log.close()
        in_thread(self._drop_schema)
        self._delete_keys()

    async def _drop_schema(self) -> None:
        conn = await asyncpg.connect(self.settings.database_url, timeout=10)
        try:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(self.schema)} CASCADE")
        finally:
            await conn.close()

    def _delete_keys(self) -> None:
        client = redis.Redis.from_url(self.settings.redis_url or "")
        try:
            for pattern in (f"{{{self.namespace}:*", f"{self.namespace}:*"):
                keys = list(client.scan_iter(match=pattern, count=1000))
                for i in range(0, len(keys), 500):
                    client.delete(*keys[i: i + 500])
        finally:
            client.close()

    # -- for tests ----------------------------------------------------------------------------

    def kill(self, name: str) -> int:
        """SIGKILL one supervised process (the supervisor restarts it); its old pid."""
        assert self.supervisor is not None
        pid = self.supervisor.pids[name]
        os.kill(pid, signal.SIGKILL)
        return pid

    def auth(self, user_id: str) -> dict[str, str]:
        """Headers acting as ``user_id`` (a bearer token this stack accepts)."""
        return bearer(self.settings, user_id)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url or "", decode_responses=True)
