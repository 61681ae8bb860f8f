"""Run named child processes: forward their logs, restart crashes, stop them all together.

Each child runs in its own session (process group), so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the children in order: SIGTERM to the group, SIGKILL after a grace
period. On Linux a child also gets SIGTERM if the supervisor itself dies without cleaning up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: a name for its log lines, its argv, extra environment, cwd, and
    how much lower than the supervisor's its scheduling priority is (``nice``, added to ours)."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    nice: int = 0


@dataclass(frozen=True)
class RestartPolicy:
    """How crashes are retried.

    A run shorter than ``stable_after_s`` counts as a failed start; ``max_failed_starts`` of them
    in a row make the supervisor give up (exit 1) instead of looping forever on a broken child.
    """

    backoff_initial_s: float = 0.5
    backoff_max_s: float = 15.0
    stable_after_s: float = 10.0
    max_failed_starts: int = 5
    grace_s: float = 10.0


# The roles ``eco2 up`` runs behind the request path (``ProcessSpec.nice`` = ECO2_WORKER_NICE):
# model-bound workers and the read side's consumers. The gateway, the character service and the
# snapshot projector (what SSE streams push) keep the supervisor's priority.
BACKGROUND_ROLES = frozenset({"scan", "reward", "chat", "projectors", "archiver"})


def role_of(name: str) -> str:
    """``scan-0`` → ``scan``: the role of one of several processes of a role."""
    return re.sub(r"-\d+$", "", name)


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel to SIGTERM us if the supervisor
    # dies, so a SIGKILLed `eco2 up` does not leave orphans behind.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def _child_setup(spec: ProcessSpec) -> Callable[[], None] | None:
    """What runs in ``spec``'s child between fork and exec (None: nothing)."""
    linux = sys.platform == "linux"
    if not spec.nice:
        return _die_with_parent if linux else None

    def setup() -> None:
        os.nice(spec.nice)
        if linux:
            _die_with_parent()

    return setup


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Supervisor:
    """Keeps every :class:`ProcessSpec` running until :meth:`stop` (or SIGINT/SIGTERM)."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        policy: RestartPolicy | None = None,
        output: TextIO | None = None,
        pid_file: Path | None = None,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"process names must be unique: {names}")
        self.specs = tuple(specs)
        self.policy = policy or RestartPolicy()
        self._out = output or sys.stdout
        self._width = max((len(n) for n in names), default=0)
        self._stopping: asyncio.Event | None = None
        self._gave_up: str | None = None
        self.pids: dict[str, int] = {}  # name -> pid of the running instance
        self.starts: dict[str, int] = dict.fromkeys(names, 0)
        # Where the running pids are published (JSON, name -> pid), for operators and chaos runs.
        self.pid_file = pid_file

    def stop(self) -> None:
        """Ask every child to stop; :meth:`run` returns once they have."""
        if self._stopping is not None:
            self._stopping.set()

    async def run(self, *, handle_signals: bool = True) -> int:
        """Run until stopped. Returns 0 after a requested stop, 1 if a child kept crashing."""
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if handle_signals else ()
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)
        try:
            await asyncio.gather(*(self._keep_running(spec) for spec in self.specs))
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
        if self._gave_up is not None:
            self._log("supervisor", f"giving up: {self._gave_up} keeps crashing at start")
            return 1
        return 0

    async def _keep_running(self, spec: ProcessSpec) -> None:
        assert self._stopping is not None
        loop = asyncio.get_running_loop()
        failed_starts = 0
        delay = self.policy.backoff_initial_s
        while not self._stopping.is_set():
            started = loop.time()
            returncode = await self._run_once(spec)
            if self._stopping.is_set():
                return
            ran = loop.time() - started
            if ran >= self.policy.stable_after_s:
                failed_starts, delay = 0, self.policy.backoff_initial_s
            failed_starts += 1
            self._log(spec.name, f"exited with {returncode} after {ran:.1f}s")
            if failed_starts >= self.policy.max_failed_starts:
                self._gave_up = spec.name
                self._stopping.set()
                return
            self._log(spec.name, f"restarting in {delay:.1f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, self.policy.backoff_max_s)

    async def _run_once(self, spec: ProcessSpec) -> int | None:
        """Start ``spec`` and wait until it exits or a stop is asked (then stop it)."""
        assert self._stopping is not None
        try:
            proc = await asyncio.create_subprocess_exec(
                *spec.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **spec.env},
                cwd=spec.cwd,
                start_new_session=True,
                preexec_fn=_child_setup(spec),
                limit=1 << 20,
            )
        except OSError as exc:
            self._log(spec.name, f"cannot start {spec.argv[0]!r}: {exc}")
            return None
        self.pids[spec.name] = proc.pid
        self.starts[spec.name] += 1
        self._publish_pids()
        assert proc.stdout is not None
        pump = asyncio.create_task(self._pump(spec.name, proc.stdout))
        exited = asyncio.create_task(proc.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not exited.done():
                await self._terminate(spec.name, proc.pid, exited)
        finally:
            stopping.cancel()
            if not exited.done():  # cancelled from outside: do not leave the child running
                _signal_group(proc.pid, signal.SIGKILL)
                await proc.wait()
            # Helpers the child forked into its group must not outlive it.
            _signal_group(proc.pid, signal.SIGKILL)
            await pump
            self.pids.pop(spec.name, None)
            self._publish_pids()
        return proc.returncode

    def _publish_pids(self) -> None:
        if self.pid_file is None:
            return
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.pids))
        tmp.replace(self.pid_file)  # readers never see a half-written file

    async def _terminate(self, name: str, pid: int, exited: asyncio.Task[int]) -> None:
        _signal_group(pid, signal.SIGTERM)
        done, _ = await asyncio.wait({exited}, timeout=self.policy.grace_s)
        if not done:
            self._log(name, f"still running {self.policy.grace_s:.0f}s after SIGTERM: SIGKILL")
            _signal_group(pid, signal.SIGKILL)
            await exited

    async def _pump(self, name: str, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line longer than the buffer limit: forward what we have
                line = await stream.read(1 << 20)
            if not line:
                return
            self._log(name, line.decode(errors="replace").rstrip("\n"))

    def _log(self, name: str, text: str) -> None:
        self._out.write(f"{name.ljust(self._width)} | {text}\n")
        self._out.flush()
