"""The supervisor forwards logs, restarts crashes with back-off, gives up, and stops children."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from infra.embedded._process import pid_alive
from infra.supervisor import ProcessSpec, RestartPolicy, Supervisor

pytestmark = pytest.mark.e2e

FAST = RestartPolicy(backoff_initial_s=0.05, backoff_max_s=0.2, stable_after_s=5, grace_s=2)


def python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def eventually(condition: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.mark.asyncio
async def test_logs_are_prefixed_and_stop_ends_children() -> None:
    out = io.StringIO()
    code = "import time; print('hello', flush=True); time.sleep(60)"
    supervisor = Supervisor(
        [ProcessSpec("web", python(code)), ProcessSpec("worker-1", python(code))],
        policy=FAST,
        output=out,
    )
    run = asyncio.create_task(supervisor.run(handle_signals=False))
    await eventually(lambda: out.getvalue().count("hello") == 2)
    pids = dict(supervisor.pids)
    supervisor.stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert "web      | hello" in out.getvalue()
    assert "worker-1 | hello" in out.getvalue()
    assert not any(pid_alive(pid) for pid in pids.values())


@pytest.mark.asyncio
async def test_a_child_runs_as_much_lower_in_priority_as_its_spec_says() -> None:
    out = io.StringIO()
    code = "import os, time; print('nice', os.nice(0), flush=True); time.sleep(60)"
    supervisor = Supervisor(
        [ProcessSpec("edge", python(code)), ProcessSpec("worker", python(code), nice=5)],
        policy=FAST, output=out,
    )
    run = asyncio.create_task(supervisor.run(handle_signals=False))
    await eventually(lambda: out.getvalue().count("nice") == 2)
    supervisor.stop()
    assert await asyncio.wait_for(run, 10) == 0
    ours = os.nice(0)
    assert f"edge   | nice {ours}" in out.getvalue()
    assert f"worker | nice {min(ours + 5, 19)}" in out.getvalue()


@pytest.mark.asyncio
async def test_crashed_child_is_restarted(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    code = (
        "import pathlib, sys, time\n"
        f"p = pathlib.Path({str(counter)!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "if n < 3: sys.exit(7)\n"
        "print('steady', flush=True); time.sleep(60)\n"
    )
    out = io.StringIO()
    supervisor = Supervisor([ProcessSpec("flaky", python(code))], policy=FAST, output=out)
    run = asyncio.create_task(supervisor.run(handle_signals=False))
    await eventually(lambda: "steady" in out.getvalue())
    supervisor.stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert supervisor.starts["flaky"] == 3
    assert out.getvalue().count("exited with 7") == 2
    assert "restarting in" in out.getvalue()


@pytest.mark.asyncio
async def test_child_crashing_at_every_start_makes_run_fail() -> None:
    out = io.StringIO()
    policy = RestartPolicy(backoff_initial_s=0.01, backoff_max_s=0.05, max_failed_starts=3)
    supervisor = Supervisor(
        [
            ProcessSpec("broken", python("import sys; sys.exit(3)")),
            ProcessSpec("fine", python("import time; time.sleep(60)")),
        ],
        policy=policy,
        output=out,
    )
    assert await asyncio.wait_for(supervisor.run(handle_signals=False), 20) == 1
    assert supervisor.starts["broken"] == 3
    assert "giving up: broken keeps crashing at start" in out.getvalue()
    assert supervisor.pids == {}  # the healthy one was stopped too


@pytest.mark.asyncio
async def test_missing_executable_counts_as_a_failed_start() -> None:
    out = io.StringIO()
    policy = RestartPolicy(backoff_initial_s=0.01, max_failed_starts=2)
    supervisor = Supervisor(
        [ProcessSpec("ghost", ("/nonexistent/eco2-ghost",))], policy=policy, output=out
    )
    assert await asyncio.wait_for(supervisor.run(handle_signals=False), 10) == 1
    assert "cannot start" in out.getvalue()


@pytest.mark.asyncio
async def test_child_ignoring_sigterm_is_killed_after_grace() -> None:
    out = io.StringIO()
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('stubborn', flush=True); time.sleep(60)\n"
    )
    policy = RestartPolicy(grace_s=0.5)
    supervisor = Supervisor([ProcessSpec("stubborn", python(code))], policy=policy, output=out)
    run = asyncio.create_task(supervisor.run(handle_signals=False))
    await eventually(lambda: "stubborn |" in out.getvalue())
    pid = supervisor.pids["stubborn"]
    started = time.monotonic()
    supervisor.stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert time.monotonic() - started < 5
    assert "SIGKILL" in out.getvalue()
    assert not pid_alive(pid)


@pytest.mark.asyncio
async def test_sigterm_to_the_supervisor_stops_everything() -> None:
    out = io.StringIO()
    supervisor = Supervisor(
        [ProcessSpec("web", python("import time; print('up', flush=True); time.sleep(60)"))],
        policy=FAST,
        output=out,
    )
    run = asyncio.create_task(supervisor.run())
    await eventually(lambda: "up" in out.getvalue())
    pid = supervisor.pids["web"]
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(run, 10) == 0
    assert not pid_alive(pid)


def test_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Supervisor([ProcessSpec("a", ("true",)), ProcessSpec("a", ("true",))])


@pytest.mark.asyncio
async def test_pid_file_names_the_running_instance_of_each_role(tmp_path: Path) -> None:
    pid_file = tmp_path / "run" / "processes.json"
    code = "import time; print('up', flush=True); time.sleep(60)"
    out = io.StringIO()
    supervisor = Supervisor(
        [ProcessSpec("web", python(code)), ProcessSpec("worker", python(code))],
        policy=FAST, output=out, pid_file=pid_file,
    )
    run = asyncio.create_task(supervisor.run(handle_signals=False))

    def published() -> dict[str, int]:
        try:
            return {k: int(v) for k, v in json.loads(pid_file.read_text()).items()}
        except (OSError, ValueError):
            return {}

    await eventually(lambda: set(published()) == {"web", "worker"})
    first = published()
    assert first == supervisor.pids
    os.kill(first["worker"], signal.SIGKILL)
    await eventually(lambda: published().get("worker") not in (None, first["worker"]))
    assert published()["web"] == first["web"]
    assert pid_alive(published()["worker"])
    supervisor.stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert published() == {}
