"""The probe listener every process runs: /healthz, /readyz (with draining), /metrics."""

from __future__ import annotations

import httpx

from infra.cli import health_urls, processes, with_health_ports
from infra.embedded._process import free_port
from infra.probes import serve_probes
from infra.settings import Settings


async def test_probes_answer_alive_ready_draining_and_metrics() -> None:
    settings = Settings(health_port=free_port())
    state: dict[str, str | None] = {"reason": "redis is not reachable: ConnectionError"}

    async def ready() -> str | None:
        return state["reason"]

    async def metrics() -> bytes:
        return b"eco2_role_specific 1.0\n"

    async with serve_probes(settings, "worker-scan", ready, metrics) as probes:
        assert probes.port == settings.health_port
        base = f"http://127.0.0.1:{probes.port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            alive = await http.get("/healthz")
            assert (alive.status_code, alive.json()) == (
                200, {"status": "alive", "role": "worker-scan"}
            )
            not_ready = await http.get("/readyz")
            assert not_ready.status_code == 503
            assert not_ready.json()["reason"] == "redis is not reachable: ConnectionError"
            state["reason"] = None
            assert (await http.get("/readyz")).json()["status"] == "ready"
            probes.draining = True  # SIGTERM: out of the load balancer and KEDA's count
            draining = await http.get("/readyz")
            assert (draining.status_code, draining.json()["status"]) == (503, "draining")
            assert (await http.get("/healthz")).status_code == 200  # still alive while draining
            scraped = await http.get("/metrics")
            assert scraped.status_code == 200
            assert scraped.headers["content-type"].startswith("text/plain")
            assert "process_cpu_seconds_total" in scraped.text  # the default registry
            assert "eco2_role_specific 1.0" in scraped.text
            assert (await http.get("/nope")).status_code == 404
            assert (await http.post("/healthz")).status_code == 405


async def test_a_failing_check_is_not_ready_never_a_crash() -> None:
    settings = Settings(health_port=free_port())

    async def broken() -> str | None:
        raise RuntimeError("pool closed")

    async with serve_probes(settings, "projectors", broken) as probes:
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(f"http://127.0.0.1:{probes.port}/readyz")
    assert r.status_code == 503 and "pool closed" in r.json()["reason"]


async def test_port_zero_serves_nothing() -> None:
    async def ready() -> str | None:
        return None

    async with serve_probes(Settings(health_port=0), "gateway", ready) as probes:
        assert probes.port is None


def test_up_gives_every_process_its_own_probe_port() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", host="0.0.0.0")
    specs = with_health_ports(settings, processes(settings))
    ports = [spec.env["ECO2_HEALTH_PORT"] for spec in specs]
    assert len(set(ports)) == len(specs) and "0" not in ports
    assert all(spec.env["REDIS_URL"] == "redis://127.0.0.1:1/0" for spec in specs)
    urls = health_urls(settings, specs)
    assert urls["scan-0"] == f"http://127.0.0.1:{ports[[s.name for s in specs].index('scan-0')]}"
