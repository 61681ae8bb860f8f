"""Process plumbing shared by the embedded servers: ports, pids, locks, privilege drop."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path


class EmbeddedServiceError(RuntimeError):
    """An embedded server could not be found, started or stopped."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def pid_alive(pid: int) -> bool:
    """True if ``pid`` names a live (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    try:
        # The state letter follows the parenthesised command name.
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pid_cmdline(pid: int) -> str:
    """The command line of ``pid`` joined by spaces, or "" when unreadable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def stop_process(
    pid: int, sig: signal.Signals, *, child: subprocess.Popen[bytes] | None, timeout_s: float
) -> None:
    """Send ``sig``, wait up to ``timeout_s`` for exit, then SIGKILL.

    ``child`` is given when we spawned the process, so it is reaped rather than left a zombie.
    """
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    if _wait_exit(pid, child, timeout_s):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_exit(pid, child, 5.0):
        raise EmbeddedServiceError(f"process {pid} survived SIGKILL")


def _wait_exit(pid: int, child: subprocess.Popen[bytes] | None, timeout_s: float) -> bool:
    if child is not None:
        try:
            child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@dataclass(frozen=True)
class ServerState:
    """What a running embedded server leaves in its data dir so a later run can find it."""

    pid: int
    port: int
    owner_pid: int  # the eco2 process responsible for stopping it

    @classmethod
    def read(cls, path: Path) -> ServerState | None:
        try:
            raw = json.loads(path.read_text())
            return cls(pid=int(raw["pid"]), port=int(raw["port"]), owner_pid=int(raw["owner_pid"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` so two eco2 processes never start one server twice."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class ServiceUser:
    """The unprivileged account a server runs as when we are root (Postgres refuses root)."""

    name: str
    uid: int
    gid: int


def unprivileged_user() -> ServiceUser | None:
    """``postgres`` (or ``nobody``) when running as root, else None (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServiceUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)
    raise EmbeddedServiceError("running as root and neither 'postgres' nor 'nobody' exists")


def give_to(path: Path, user: ServiceUser) -> None:
    """Make ``path`` owned by ``user`` and reachable by it.

    Ancestors we own get only the traverse bit for others (o+x, no listing), the minimum that
    lets the service user reach its data dir under e.g. a 0700 home or pytest temp dir.
    """
    os.chown(path, user.uid, user.gid)
    for parent in path.resolve().parents:
        mode = parent.stat()
        if mode.st_uid == user.uid or mode.st_mode & stat.S_IXOTH:
            continue
        if mode.st_uid != os.geteuid():
            raise EmbeddedServiceError(
                f"{user.name} cannot reach {path}: {parent} is not traversable"
            )
        parent.chmod(mode.st_mode | stat.S_IXOTH)
