"""Every metric the dashboard and the alert rules use is served by a role of a running
``eco2 up``: each process's ``/metrics`` port (and the gateway's own ``/metrics``) is scraped
after one scan, and the families they declare must cover every name the files use."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from infra.embedded._process import free_port
from tests.infra.test_cli import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

OBSERVABILITY = REPO / "infra" / "deploy" / "observability"
PROBES = re.compile(r"^(\S+)\s+(http://[\d.]+:\d+)/healthz /readyz /metrics", re.M)


def used_metrics() -> set[str]:
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    rules = yaml.safe_load((OBSERVABILITY / "prometheus-rules.yaml").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    return {name for expr in exprs for name in re.findall(r"\beco2_\w+", expr)}


def declared(text: str) -> set[str]:
    """Sample names a scrape can hold, from its ``# TYPE`` lines (families with no sample yet
    are declared too)."""
    names = set()
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M):
        names.add(name)
        if kind == "counter":
            names |= {name.removesuffix("_total"), name.removesuffix("_total") + "_total"}
        if kind == "histogram":
            names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
    return names


def scrape(role: str, url: str, *, until: float) -> str:
    """The role's /metrics, once its probe port answers (each process opens it as it starts)."""
    while True:
        try:
            reply = httpx.get(f"{url}/metrics", timeout=10)
        except httpx.TransportError:
            assert time.monotonic() < until, f"{role}: no probe port at {url}"
            time.sleep(0.2)
            continue
        assert reply.status_code == 200, role
        return reply.text


def test_a_running_system_serves_every_metric_the_dashboard_and_alerts_use(
    data_dir: Path,
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env["ECO2_DATA_DIR"] = str(data_dir / "eco2")
    log_path = data_dir / "up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "infra.cli", "up", "--port", str(port)],
                              cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while f"Eco² is up: {base}" not in log_path.read_text():
            assert up.poll() is None, f"eco2 up exited early:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"not up in 120s:\n{log_path.read_text()}"
            time.sleep(0.2)
        roles = dict(PROBES.findall(log_path.read_text()))
        running = {"gateway", "scan-0", "scan-1", "reward", "snapshot", "projectors"}
        assert running <= set(roles), roles
        scraped = declared(httpx.get(f"{base}/metrics", timeout=10).text)
        for role, url in roles.items():
            scraped |= declared(scrape(role, url, until=time.monotonic() + 60))
        used = used_metrics()
        # the figures the dashboard shows beyond the basic ones
        assert {"eco2_sse_delivery_seconds_bucket", "eco2_llm_tokens_total",
                "eco2_circuit_breaker_state", "eco2_rebuild_position", "eco2_rebuild_target",
                "eco2_projection_position", "eco2_sse_connections"} <= used
        missing = used - scraped
        assert not missing, f"used by the dashboard or alerts, served by no role: {missing}"
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
