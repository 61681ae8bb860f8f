"""The load generator split across processes: one asyncio loop driving thousands of users on a
2-core machine saturates its own core first, and then every latency it takes measures the
generator. Each child runs one slice of the users with its own connections and reports back.

``run_clients`` starts one spawned process per slice; each child does its own setup (connections,
a log tail), says it is ready, and waits for the common start so no child's users begin before
another's watcher is in place. The children's CPU time is reported by themselves (``os.times``
from the start to their last user), next to their results.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any, TypeVar

from infra.cli_workers import run_async

S = TypeVar("S")
R = TypeVar("R")
Started = Callable[[], Awaitable[None]]  # a child awaits it once ready; returns at the start
ClientMain = Callable[[S, Started], Coroutine[Any, Any, R]]


def cpu_s() -> float:
    """This process's user + system CPU seconds."""
    times = os.times()
    return times.user + times.system


def _child(main: ClientMain[Any, Any], part: Any, ready: Queue[int], go: Event,
           results: Queue[tuple[str, Any]]) -> None:
    async def started() -> None:
        ready.put(os.getpid())
        await asyncio.to_thread(go.wait)

    try:
        # The stack's own loop (uvloop, a cheaper one per socket operation): the generator's
        # CPU is counted next to the system's.
        results.put(("ok", run_async(main(part, started))))
    except BaseException:
        results.put(("error", traceback.format_exc()))


async def run_clients(
    main: ClientMain[S, R], parts: Sequence[S], *, on_start: Callable[[], Awaitable[None]],
    timeout_s: float,
) -> list[R]:
    """Run ``main(part, started)`` in one process per part; ``on_start`` is called when every
    child is ready, just before they are let go. Raises if a child fails or hangs."""
    ctx = multiprocessing.get_context("spawn")
    ready: Queue[int] = ctx.Queue()
    results: Queue[tuple[str, Any]] = ctx.Queue()
    go = ctx.Event()
    children = [ctx.Process(target=_child, args=(main, part, ready, go, results), daemon=True)
                for part in parts]
    # Started side by side: a spawned child reads its (large) arguments only once it has
    # imported the bench, and ``start`` blocks on that pipe.
    await asyncio.gather(*(asyncio.to_thread(child.start) for child in children))
    try:
        deadline = time.monotonic() + 120
        for _ in children:
            await asyncio.to_thread(ready.get, True, max(1.0, deadline - time.monotonic()))
        await on_start()
        go.set()
        out: list[R] = []
        deadline = time.monotonic() + timeout_s
        for _ in children:
            status, value = await asyncio.to_thread(
                results.get, True, max(1.0, deadline - time.monotonic()))
            if status != "ok":
                raise RuntimeError(f"a bench client process failed:\n{value}")
            out.append(value)
        return out
    finally:
        for child in children:
            child.join(timeout=5)
            if child.is_alive():
                child.kill()
                child.join()


def slices(count: int, processes: int) -> list[range]:
    """``range(count)`` in ``processes`` interleaved slices (each gets early and late starters)."""
    return [range(i, count, processes) for i in range(min(processes, count))]
