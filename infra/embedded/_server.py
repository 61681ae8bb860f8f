"""The life cycle every embedded server shares: reuse, adopt or start; wait; stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType

from infra.embedded._process import (
    EmbeddedServiceError,
    ServerState,
    free_port,
    locked,
    pid_alive,
    pid_cmdline,
    stop_process,
    tail,
)


class EmbeddedServer(ABC):
    """A server process living in ``home`` (a folder of the data dir), used as a context manager.

    ``with server as url`` gives a connection URL. If a previous ``eco2`` run left the server
    running it is reused: while that run is alive it keeps ownership and we never stop the
    server; if that run died, we adopt the server and stop it on exit. Otherwise a fresh server
    is started on a free port and stopped on exit.

    Subclasses say how to prepare, spawn, probe and stop their server.
    """

    executable_name = ""  # a substring of the server's command line, to recognise stale pids
    stop_signal = signal.SIGTERM
    start_timeout_s = 30.0
    stop_timeout_s = 15.0

    def __init__(self, home: Path, host: str = "127.0.0.1") -> None:
        self.home = home.resolve()
        self.host = host
        self.log_path = self.home / "server.log"
        self._state_path = self.home / "state.json"
        self._child: subprocess.Popen[bytes] | None = None
        self._state: ServerState | None = None
        self._owned = False

    # --- for subclasses -------------------------------------------------------------------
    def prepare(self) -> None:  # noqa: B027  (optional hook)
        """Create on-disk state before the first start (idempotent)."""

    @abstractmethod
    def spawn(self, port: int, log: int) -> subprocess.Popen[bytes]:
        """Start the server process on ``port``, its output going to the ``log`` fd."""
        ...

    @abstractmethod
    def is_ready(self, port: int) -> bool:
        """True once the server answers on ``port``."""
        ...

    def after_start(self, port: int) -> None:  # noqa: B027  (optional hook)
        """Runs once the server is ready (create databases, ...)."""

    @abstractmethod
    def url(self, port: int) -> str:
        """The connection URL clients should use."""
        ...

    # --- life cycle -----------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._state is None:
            raise EmbeddedServiceError("server is not running")
        return self._state.port

    @property
    def pid(self) -> int:
        if self._state is None:
            raise EmbeddedServiceError("server is not running")
        return self._state.pid

    @property
    def owned(self) -> bool:
        """Whether leaving the ``with`` block stops the server."""
        return self._owned

    def __enter__(self) -> str:
        self.home.mkdir(parents=True, exist_ok=True)
        with locked(self.home / ".lock"):
            if not self._reuse():
                self._start()
        return self.url(self.port)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server if we own it; forget it either way."""
        state, self._state = self._state, None
        if state is None or not self._owned:
            return
        with locked(self.home / ".lock"):
            stop_process(
                state.pid, self.stop_signal, child=self._child, timeout_s=self.stop_timeout_s
            )
            self._state_path.unlink(missing_ok=True)
        self._child = None
        self._owned = False

    def halt(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Stop the server we own with ``sig`` but keep its port, so :meth:`resume` brings it
        back where its clients look (chaos runs: a crashed Redis, a stopped Postgres)."""
        if self._state is None or not self._owned:
            raise EmbeddedServiceError("only a server this process started can be halted")
        with locked(self.home / ".lock"):
            stop_process(self._state.pid, sig, child=self._child, timeout_s=self.stop_timeout_s)

    def resume(self) -> None:
        """Start the server again on the port it had before :meth:`halt`."""
        if self._state is None or not self._owned:
            raise EmbeddedServiceError("only a server this process started can be resumed")
        port = self._state.port
        with locked(self.home / ".lock"), self.log_path.open("ab") as log:
            child = self.spawn(port, log.fileno())
            self._child = child
            self._state = ServerState(pid=child.pid, port=port, owner_pid=os.getpid())
            self._state.write(self._state_path)
            self._wait_ready(child, port)

    def _reuse(self) -> bool:
        state = ServerState.read(self._state_path)
        if state is None or not pid_alive(state.pid):
            return False
        if self.executable_name not in pid_cmdline(state.pid):
            return False  # the pid was recycled by an unrelated process
        if not self.is_ready(state.port):
            # Ours but not answering (wedged, or half started by a killed run): restart it.
            stop_process(state.pid, signal.SIGKILL, child=None, timeout_s=5.0)
            return False
        # Another live run (or an outer ``with`` in this process) is responsible for it.
        if state.owner_pid == os.getpid() or pid_alive(state.owner_pid):
            self._state, self._owned = state, False
        else:
            self._state = ServerState(pid=state.pid, port=state.port, owner_pid=os.getpid())
            self._state.write(self._state_path)
            self._owned = True
        return True

    def _start(self) -> None:
        self.prepare()
        port = free_port(self.host)
        with self.log_path.open("ab") as log:
            child = self.spawn(port, log.fileno())
        self._child, self._owned = child, True
        self._state = ServerState(pid=child.pid, port=port, owner_pid=os.getpid())
        self._state.write(self._state_path)
        try:
            self._wait_ready(child, port)
            self.after_start(port)
        except BaseException:
            # Interrupted or failed: never leave a half-started server behind.
            self.stop()
            raise

    def _wait_ready(self, child: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not self.is_ready(port):
            if child.poll() is not None:
                raise EmbeddedServiceError(
                    f"{self.executable_name} exited with {child.returncode} at start; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"{self.executable_name} did not answer within {self.start_timeout_s:.0f}s; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            time.sleep(0.05)
