"""Embedded PostgreSQL: binaries from PATH or /usr/lib/postgresql, else those in pgserver."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
from pathlib import Path

from infra.embedded._process import (
    EmbeddedServiceError,
    ServiceUser,
    give_to,
    tail,
    unprivileged_user,
)
from infra.embedded._server import EmbeddedServer
from infra.settings import Settings

DATABASE = "eco2"
SUPERUSER = "postgres"
_NEEDED = ("initdb", "postgres", "psql")


def _complete(bin_dir: Path) -> bool:
    return all((bin_dir / name).is_file() for name in _NEEDED)


def bundled_postgres_bin() -> Path:
    """The ``bin`` folder of the PostgreSQL build shipped inside the pgserver package."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServiceError("no PostgreSQL binaries on PATH and pgserver is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not _complete(bin_dir):
        raise EmbeddedServiceError(f"pgserver is installed but {bin_dir} lacks {_NEEDED}")
    return bin_dir


def find_postgres_bin(*, prefer_bundled: bool = False) -> Path:
    """A folder holding initdb/postgres/psql: PATH, then /usr/lib/postgresql/*/bin, then pgserver."""
    if not prefer_bundled:
        found = shutil.which("pg_ctl") or shutil.which("initdb")
        # Debian links /usr/local/bin/pg_ctl into the versioned folder: follow the link.
        if found and _complete(Path(found).resolve().parent):
            return Path(found).resolve().parent
        versions = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        for bin_dir in versions:
            if _complete(bin_dir):
                return bin_dir
    return bundled_postgres_bin()


class EmbeddedPostgres(EmbeddedServer):
    """A private PostgreSQL cluster under ``<data_dir>/pg/`` with trust auth on 127.0.0.1.

    ``with EmbeddedPostgres(settings) as url`` gives ``postgresql://postgres@127.0.0.1:<port>/eco2``;
    the ``eco2`` database is created on first start. As root the server runs as ``postgres``
    (or ``nobody``) because PostgreSQL refuses to run as root.
    """

    executable_name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit. SIGTERM
    # ("smart") would wait for every client to disconnect.
    stop_signal = signal.SIGINT
    start_timeout_s = 60.0

    def __init__(
        self, settings: Settings, *, bin_dir: Path | None = None, prefer_bundled: bool = False
    ) -> None:
        super().__init__(settings.data_dir / "pg")
        self.bin_dir = bin_dir or find_postgres_bin(prefer_bundled=prefer_bundled)
        self.pgdata = self.home / "data"
        self.user: ServiceUser | None = unprivileged_user()

    def _run_as(self) -> tuple[int | None, int | None, list[int] | None]:
        """(user, group, extra_groups) for subprocess: the service user's, or ours."""
        if self.user is None:
            return None, None, None
        return self.user.uid, self.user.gid, []

    def prepare(self) -> None:
        done = self.home / "initdb.done"
        if done.exists():
            return
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)  # a previous initdb was interrupted half-way
        self.pgdata.mkdir(mode=0o700)
        if self.user is not None:
            give_to(self.pgdata, self.user)
        uid, gid, groups = self._run_as()
        result = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            cwd=self.pgdata,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=120,
            check=False,
            user=uid,
            group=gid,
            extra_groups=groups,
        )
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise EmbeddedServiceError(
                f"initdb failed ({result.returncode}):\n{result.stderr.decode(errors='replace')}"
            )
        done.touch()

    def spawn(self, port: int, log: int) -> subprocess.Popen[bytes]:
        uid, gid, groups = self._run_as()
        return subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(self.pgdata),
                "-p",
                str(port),
                "-c",
                f"listen_addresses={self.host}",
                # No unix socket: the compiled-in socket folder may not be writable by our user.
                "-c",
                "unix_socket_directories=",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=self.pgdata,
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=groups,
        )

    def is_ready(self, port: int) -> bool:
        # postmaster.pid's 8th line is the server status; "ready" means it accepts connections.
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[3].strip() == str(port) and lines[7].strip() == "ready"

    def after_start(self, port: int) -> None:
        exists = self._psql(port, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'")
        if exists.strip() != "1":
            self._psql(port, f'CREATE DATABASE "{DATABASE}"')

    def _psql(self, port: int, sql: str) -> str:
        env = {**os.environ, "PGCONNECT_TIMEOUT": "5"}
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-h",
                self.host,
                "-p",
                str(port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-X",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=env,
            timeout=30,
            check=False,
        )
        if result.returncode != 0:
            raise EmbeddedServiceError(
                f"psql {sql!r} failed: {result.stderr.decode(errors='replace')}\n{tail(self.log_path)}"
            )
        return result.stdout.decode()

    def url(self, port: int) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{port}/{DATABASE}"
