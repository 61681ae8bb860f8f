"""``eco2 bench append --only consume``: both consumers handle the whole backlog, each timed
from its start to its last handler run, not through its stop."""

from __future__ import annotations

import time

import pytest

from infra.bench.append import run_consume_bench
from infra.bench.consume import CONSUME_BASELINE, CONSUME_RUNTIME


@pytest.mark.redis
@pytest.mark.parametrize("runtime_first", [False, True], ids=["baseline_first", "runtime_first"])
async def test_both_consumers_are_timed_to_their_last_run(
    redis_url: str, runtime_first: bool
) -> None:
    started = time.perf_counter()
    figures = await run_consume_bench(redis_url, events=2000, runtime_first=runtime_first)
    wall = time.perf_counter() - started
    assert [f.name for f in figures] == [CONSUME_BASELINE, CONSUME_RUNTIME]
    assert [f.events for f in figures] == [5000, 5000]  # events/2 + 2×events, whole calls
    # each within the call, and the runtime's short of its graceful stop (block_ms + 0.25 s)
    assert all(0 < f.seconds < wall for f in figures)
    assert sum(f.seconds for f in figures) < wall - 0.35
