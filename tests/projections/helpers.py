"""Helpers for the read-side tests: load synthetic events, wait for projectors, verify all."""

from __future__ import annotations

import asyncio
import time

from eventstore.store import EventStore
from projections.builtin import PROJECTIONS
from projections.commit import load_checkpoints
from projections.context import ReadSide
from projections.replay import heads
from projections.synthetic import SyntheticLog
from projections.verify import VerifyReport, verify
from readmodels import versions


async def load(store: EventStore, log: SyntheticLog, jobs: int) -> int:
    """Append ``jobs`` more scan jobs; returns how many events were written."""
    written = 0
    for chunk in log.appends(jobs):
        results = await store.append_batch(chunk)
        written += sum(len(r.records) for r in results)
    return written


async def lag(side: ReadSide, names: list[str] | None = None) -> int:
    """Events not yet applied by the active versions of ``names`` (all by default)."""
    log_heads = await heads(side)
    behind = 0
    async with side.pool.acquire() as conn:
        for name in names or list(PROJECTIONS):
            version = await versions.active_version(conn, name)
            assert version is not None
            done = await load_checkpoints(conn, name, versions.suffix_of(version))
            behind += sum(max(h - done.get(s, 0), 0) for s, h in log_heads.items())
    return behind


async def wait_caught_up(side: ReadSide, timeout: float = 20.0, names: list[str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while (behind := await lag(side, names)) > 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"projectors still {behind} events behind after {timeout} s")
        await asyncio.sleep(0.1)


async def verify_all(side: ReadSide) -> list[VerifyReport]:
    return [await verify(side, p) for p in PROJECTIONS.values()]


def describe(reports: list[VerifyReport]) -> str:
    return "; ".join(
        f"{r.name}: " + ", ".join(
            f"{t.table} live={t.live_rows} rebuilt={t.rebuilt_rows} only_live={t.only_live[:3]}"
            f" only_rebuilt={t.only_rebuilt[:3]} different={t.different[:3]}"
            for t in r.tables if not t.clean
        )
        for r in reports if not r.clean
    )
