"""``eco2 up`` end to end: embedded services, gateway /health, clean Ctrl-C; config errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from infra.cli import app, processes
from infra.embedded._process import free_port
from infra.settings import Settings
from infra.supervisor import role_of

REPO = Path(__file__).resolve().parents[2]


def test_processes_run_the_whole_system_with_resolved_urls() -> None:
    settings = Settings.from_env({}).with_(
        redis_url="redis://127.0.0.1:1/0", database_url="postgresql://p@127.0.0.1:2/eco2", port=8123
    )
    specs = {spec.name: spec for spec in processes(settings)}
    assert set(specs) == {
        "gateway", "characters", "scan-0", "scan-1", "reward", "chat", "snapshot", "projectors",
        "archiver",
    }
    for spec in specs.values():
        assert spec.env["REDIS_URL"] == "redis://127.0.0.1:1/0"
    assert specs["scan-0"].argv == specs["scan-1"].argv  # ECO2_SCAN_WORKERS (2) of them
    assert specs["scan-0"].argv[-2:] == ("worker", "scan")
    assert specs["projectors"].argv[-2:] == ("projections", "run")
    assert specs["archiver"].argv[-2:] == ("archive", "run")
    gateway = specs["gateway"]
    assert "infra.gateway_app:create_app" in gateway.argv and "--factory" in gateway.argv
    assert gateway.argv[gateway.argv.index("--port") + 1] == "8123"
    assert gateway.env["REDIS_URL"] == "redis://127.0.0.1:1/0"
    assert gateway.env["DATABASE_URL"] == "postgresql://p@127.0.0.1:2/eco2"


def test_scan_workers_are_numbered_processes_of_one_role() -> None:
    def scan_workers(env: dict[str, str]) -> list[str]:
        names = [spec.name for spec in processes(Settings.from_env(env))]
        return [name for name in names if role_of(name) == "scan"]

    assert scan_workers({"ECO2_SCAN_WORKERS": "1"}) == ["scan-0"]
    assert scan_workers({"ECO2_SCAN_WORKERS": "3"}) == ["scan-0", "scan-1", "scan-2"]
    assert role_of("scan-12") == "scan" and role_of("gateway") == "gateway"
    assert role_of("worker-scan") == "worker-scan"  # only a trailing number is an instance


def test_background_consumers_run_behind_the_request_path() -> None:
    def nice(settings: Settings) -> dict[str, int]:
        return {spec.name: spec.nice for spec in processes(settings)}

    assert nice(Settings.from_env({})) == {
        "gateway": 0, "characters": 0, "snapshot": 0,  # a request or an SSE push waits on these
        "scan-0": 5, "scan-1": 5, "reward": 5, "chat": 5, "projectors": 5, "archiver": 5,
    }
    assert set(nice(Settings.from_env({"ECO2_WORKER_NICE": "0"})).values()) == {0}


def test_every_worker_up_runs_is_a_command_of_the_worker_group_itself() -> None:
    """``infra.cli_workers`` alone registers each worker (none by another module's import)."""
    settings = Settings.from_env({}).with_(redis_url="redis://127.0.0.1:1/0")
    workers = {s.argv[-1] for s in processes(settings) if s.argv[-2:-1] == ("worker",)}
    assert workers == {"scan", "reward", "chat", "snapshot"}
    listed = subprocess.run(
        [sys.executable, "-c", "from infra.cli_workers import worker_app; "
         "print(' '.join(c.name or '' for c in worker_app.registered_commands))"],
        cwd=REPO, capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()
    assert set(listed) == workers

def test_bad_setting_exits_2_with_the_variable_named() -> None:
    result = CliRunner().invoke(app, ["up"], env={"ECO2_SHARDS": "many"})
    assert result.exit_code == 2
    assert "ECO2_SHARDS='many' is not an integer" in result.output


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.e2e
def test_up_serves_health_and_stops_cleanly_on_ctrl_c(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env["ECO2_DATA_DIR"] = str(data_dir / "eco2")
    log_path = data_dir / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "up", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        # What a user waits for: the announcement, made once /health answers.
        while f"Eco² is up: http://127.0.0.1:{port}" not in log_path.read_text():
            assert up.poll() is None, f"eco2 up exited early:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"not up in 60s:\n{log_path.read_text()}"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
        children = psutil.Process(up.pid).children(recursive=True)
        names = " ".join(" ".join(c.cmdline()) for c in children)
        assert "redis-server" in names and "postgres" in names and "uvicorn" in names
        assert "/healthz /readyz /metrics" in log_path.read_text()  # each probe port printed

        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0, log_path.read_text()
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    output = log_path.read_text()
    assert f"Eco² is up: http://127.0.0.1:{port}" in output
    assert "(embedded, data in" in output
    assert _alive(children) == []


@pytest.mark.redis
@pytest.mark.slow
def test_services_cluster_starts_three_masters_and_three_replicas(data_dir: Path) -> None:
    from eventstore.redis_client import open_redis_sync

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # Postgres: the configured one
    env["ECO2_DATA_DIR"] = str(data_dir / "eco2")
    log_path = data_dir / "services.log"
    with log_path.open("wb") as log:
        services = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "services", "--cluster"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while "export REDIS_URL=" not in log_path.read_text():
            assert services.poll() is None, f"exited early:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"no cluster in 90s:\n{log_path.read_text()}"
            time.sleep(0.2)
        url = log_path.read_text().split("export REDIS_URL=", 1)[1].split()[0]
        client = open_redis_sync(url, decode_responses=True)
        try:
            nodes = client.cluster_nodes()
            assert sum("master" in n["flags"] for n in nodes.values()) == 3
            assert sum("slave" in n["flags"] for n in nodes.values()) == 3
            assert client.set("{x}k", "v") and client.get("{x}k") == "v"
        finally:
            client.close()
        assert (data_dir / "eco2" / "redis-cluster").is_dir()
        children = psutil.Process(services.pid).children(recursive=True)
        assert sum("redis-server" in " ".join(c.cmdline()) for c in children) == 6
        services.send_signal(signal.SIGTERM)
        services.wait(timeout=30)
    finally:
        if services.poll() is None:
            services.kill()
            services.wait()
    assert _alive(children) == []
