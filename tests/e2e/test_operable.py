"""Every role is operable: /healthz, /readyz and /metrics on its own port, and SIGTERM drains
(stop reading, finish in-flight work, ack, exit) within ECO2_DRAIN_GRACE_S.

The processes are the ones ``eco2 up`` runs (``infra.cli.processes()`` with their probe ports),
started here directly so the test owns them and sees their exit codes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis as sync_redis

import schemas
from eventstore.keys import Layout
from eventstore.store import EventStore
from infra.cli import health_urls, processes, with_health_ports
from infra.embedded._process import free_port
from infra.settings import Settings
from schemas.envelope import Metadata
from schemas.scan import SCAN_JOB, AnswerCompleted, RequestScan, StageStarted
from tests.browser.stack import Stack, in_thread

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.postgres, pytest.mark.slow]




def wait_for(check: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


# A request that must succeed: seven processes share two cores here, so a probe can wait a
# while for its process (5 s is httpx's default; an answer returns at once).
PROBE_S = 20


def status_of(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A stack's settings and clean-up (fresh namespace and schema); processes started by tests."""
    s = Stack(os.environ["REDIS_URL"], os.environ["DATABASE_URL"], tmp_path)
    in_thread(s._prepare)
    yield s
    s.stop()


def start(stack: Stack, names: set[str], **env: str) -> dict[str, tuple[subprocess.Popen[bytes], str]]:
    every = with_health_ports(stack.settings, processes(stack.settings))
    specs = [spec for spec in every if spec.name in names]
    urls = health_urls(stack.settings, specs)
    started = {}
    for spec in specs:
        full = {**os.environ, **spec.env, **stack.env, **env}
        log = (stack.log_path.parent / f"{spec.name}.log").open("wb")
        proc = subprocess.Popen(spec.argv, env=full, stdout=log, stderr=subprocess.STDOUT)
        started[spec.name] = (proc, urls[spec.name])
    return started


def stop_all(procs: dict[str, tuple[subprocess.Popen[bytes], str]]) -> None:
    for proc, _ in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_every_role_serves_probes_and_exits_cleanly_on_sigterm(stack: Stack) -> None:
    roles = {"gateway", "characters", "scan-0", "reward", "chat", "snapshot", "projectors"}
    procs = start(stack, roles, ECO2_DRAIN_GRACE_S="10")
    try:
        for name, (_, url) in procs.items():
            wait_for(lambda url=url: status_of(f"{url}/readyz") == 200, 90, f"{name} ready")
            alive = httpx.get(f"{url}/healthz", timeout=PROBE_S)
            assert alive.status_code == 200 and alive.json()["status"] == "alive", name
            metrics = httpx.get(f"{url}/metrics", timeout=PROBE_S)
            assert metrics.status_code == 200 and "process_cpu_seconds_total" in metrics.text
        assert "eco2_worker_in_flight" in httpx.get(f"{procs['scan-0'][1]}/metrics",
                                                     timeout=PROBE_S).text
        assert "eco2_sse_hub_pubsub_connections" in httpx.get(
            f"{procs['gateway'][1]}/metrics", timeout=PROBE_S
        ).text
        for proc, _ in procs.values():
            proc.send_signal(signal.SIGTERM)
        for name, (proc, _) in procs.items():
            code = proc.wait(timeout=30)
            assert code in (0, -signal.SIGTERM), f"{name} exited {code}"
    finally:
        stop_all(procs)


def append_scan(settings: Settings) -> str:
    async def run() -> str:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(settings.redis_url or "", decode_responses=True)
        try:
            store = EventStore(client, Layout(settings.namespace, settings.shards),
                               schemas.registry)
            job = str(uuid.uuid4())
            command = schemas.registry.envelope(
                RequestScan(job_id=job, user_id="drain", image_url="https://images.example.org/a.png",
                            user_input="페트병"),
                aggregate_id=job, aggregate_type=SCAN_JOB, metadata=Metadata(user_id="drain"),
            )
            await store.append_command(command)
            return job
        finally:
            await client.aclose()

    return asyncio.run(run())


def job_types(stack: Stack, job: str) -> list[str]:
    layout = Layout(stack.settings.namespace, stack.settings.shards)
    client = sync_redis.Redis.from_url(stack.settings.redis_url or "", decode_responses=True)
    try:
        entries = client.xrange(layout.keys_for(job).aggregate(job))
    finally:
        client.close()
    return [fields["type"] for _, fields in entries]


def pending_scans(stack: Stack) -> int:
    layout = Layout(stack.settings.namespace, stack.settings.shards)
    client = sync_redis.Redis.from_url(stack.settings.redis_url or "", decode_responses=True)
    try:
        return sum(int(client.xpending(layout.keys(s).commands, "scan")["pending"])
                   for s in range(layout.shards))
    finally:
        client.close()


def wire(cls: type) -> str:
    return schemas.registry.wire_name(cls)[0]


@pytest.mark.parametrize("grace_s", [30, 1])
def test_sigterm_drains_a_worker_within_the_grace(stack: Stack, grace_s: int) -> None:
    """Production latency: a scan takes ~9 s in one delivery. SIGTERM mid-vision: with enough
    grace the scan finishes and is acked before the exit; with too little the process still
    exits at the grace and the unfinished entry stays pending for a claim (nothing lost)."""
    procs = start(stack, {"scan-0"}, ECO2_DRAIN_GRACE_S=str(grace_s), ECO2_LATENCY="production")
    proc, url = procs["scan-0"]
    try:
        wait_for(lambda: status_of(f"{url}/readyz") == 200, 60, "scan worker ready")
        job = append_scan(stack.settings)
        wait_for(lambda: wire(StageStarted) in job_types(stack, job), 30, "vision started")
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: status_of(f"{url}/readyz") in (503, None), 10, "draining")
        assert proc.wait(timeout=grace_s + 20) == 0
        finished = wire(AnswerCompleted) in job_types(stack, job)
        if grace_s == 30:
            assert finished and pending_scans(stack) == 0  # finished in flight, then acked
        else:
            assert not finished and pending_scans(stack) == 1  # left for a claim
    finally:
        stop_all(procs)


def test_eco2_gateway_and_eco2_migrate_as_containers_run_them(tmp_path: Path) -> None:
    """The image's commands: `eco2 migrate` prepares an empty schema (the Job), then
    `eco2 gateway` serves with its probes and drains on SIGTERM."""
    stack = Stack(os.environ["REDIS_URL"], os.environ["DATABASE_URL"], tmp_path)
    probe_port = free_port()
    env = {
        **os.environ, **stack.env,
        "REDIS_URL": stack.settings.redis_url or "", "DATABASE_URL": stack.settings.database_url or "",
        "ECO2_PORT": str(stack.port), "ECO2_HEALTH_PORT": str(probe_port),
        "ECO2_DATA_DIR": str(tmp_path / "data"), "ECO2_DRAIN_GRACE_S": "5",
    }
    try:
        migrate = subprocess.run([sys.executable, "-m", "infra.cli", "migrate"], env=env,
                                 capture_output=True, text=True, timeout=180)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        assert "read models are ready" in migrate.stdout
        with (tmp_path / "gateway.log").open("wb") as log:
            gateway = subprocess.Popen([sys.executable, "-m", "infra.cli", "gateway"], env=env,
                                       stdout=log, stderr=subprocess.STDOUT)
        try:
            probes = f"http://127.0.0.1:{probe_port}"
            wait_for(lambda: status_of(f"{probes}/readyz") == 200, 60, "gateway ready")
            catalog = httpx.get(f"{stack.base_url}/api/v1/character/catalog",
                                headers=stack.auth("container-user"), timeout=PROBE_S)
            assert catalog.status_code == 200 and len(catalog.json()) == 13  # seeded
            assert "eco2_sse_connections" in httpx.get(f"{probes}/metrics", timeout=PROBE_S).text
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(timeout=30) in (0, -signal.SIGTERM)
        finally:
            if gateway.poll() is None:
                gateway.kill()
                gateway.wait(10)
    finally:
        stack.stop()
