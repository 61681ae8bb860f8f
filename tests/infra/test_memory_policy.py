"""No Redis that may evict keys: refused at start with the setting named; the embedded one
never evicts and has a memory limit."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from typer.testing import CliRunner

from eventstore.memory_policy import EvictingRedis
from infra.bench.repeat import bench_maxmemory, bench_services
from infra.bootstrap import open_resources
from infra.cli import app
from infra.embedded import EmbeddedRedis
from infra.embedded._process import free_port
from infra.settings import Settings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server on PATH"),
]


@pytest.fixture
def evicting_redis(data_dir: Path) -> Iterator[str]:
    """A private redis-server with an eviction policy (never touch the shared server's)."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(data_dir), "--maxmemory-policy", "allkeys-lru"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                subprocess.run(["sleep", "0.05"], check=True)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


async def test_processes_refuse_an_evicting_redis(evicting_redis: str) -> None:
    with pytest.raises(EvictingRedis, match=r"maxmemory-policy is 'allkeys-lru'.*noeviction"):
        async with open_resources(Settings(redis_url=evicting_redis)):
            pass


def test_eco2_up_refuses_an_evicting_redis_before_touching_anything(
    evicting_redis: str, data_dir: Path
) -> None:
    env = {
        "REDIS_URL": evicting_redis,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",  # never reached
        "ECO2_DATA_DIR": str(data_dir),
        "ECO2_PORT": str(free_port()),
    }
    result = CliRunner().invoke(app, ["up"], env=env)
    assert result.exit_code == 1, result.output
    assert "refusing to start" in result.output
    assert "maxmemory-policy" in result.output and "noeviction" in result.output


def test_embedded_redis_never_evicts_and_has_a_memory_limit(settings: Settings) -> None:
    with EmbeddedRedis(settings.with_(redis_maxmemory="64mb")) as url:
        client = redis.Redis.from_url(url, decode_responses=True)
        try:
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        finally:
            client.close()


def test_a_bench_runs_its_own_redis_sized_for_the_run_on_data_of_its_own(
    settings: Settings,
) -> None:
    # A 120 s scan run writes more than `eco2 up`'s 1 GB; a full Redis would fail its last writes.
    # And never on the data directory of an `eco2 up`, nor on an earlier run's AOF.
    (settings.data_dir / "redis").mkdir()
    with bench_services(settings) as bench:
        assert bench.database_url == "unused"
        assert bench.data_dir.parent == settings.data_dir.resolve() and bench.data_dir.is_dir()
        client = redis.Redis.from_url(str(bench.redis_url), decode_responses=True)
        try:
            assert client.config_get("maxmemory") == {"maxmemory": bench_maxmemory()}
            assert int(bench_maxmemory()) > 1024**3
            assert client.dbsize() == 0
        finally:
            client.close()
    assert not bench.data_dir.exists()
    assert list((settings.data_dir / "redis").iterdir()) == []
    with bench_services(settings.with_(redis_maxmemory="64mb")) as bench:  # ECO2_REDIS_MAXMEMORY
        client = redis.Redis.from_url(str(bench.redis_url), decode_responses=True)
        try:
            assert client.config_get("maxmemory") == {"maxmemory": str(64 * 1024 * 1024)}
        finally:
            client.close()
