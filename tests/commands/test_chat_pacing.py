"""``paced``: the chat turn's view of the graph's updates, with Idle and deadline Ticks.

Time here is the event loop's own: the source sleeps, and the deadlines are short, so each
test says what must come out in what order, never how long anything took."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from commands.chat.pacing import Idle, Tick, paced, pushed


async def _items(*plan: str | float) -> AsyncIterator[str]:
    """Yield each text of ``plan``; a number is a pause of that many seconds."""
    for step in plan:
        if isinstance(step, str):
            yield step
        else:
            await asyncio.sleep(step)


def _names(out: list[object]) -> list[str]:
    return [x if isinstance(x, str) else type(x).__name__ for x in out]


async def _all(source: AsyncIterator[str], due: object = lambda: None) -> list[object]:
    out: list[object] = []
    async with contextlib.aclosing(paced(pushed(source), due)) as items:  # type: ignore[arg-type]
        async for item in items:
            out.append(item)
    return out


async def test_items_in_order_with_an_idle_before_each_wait() -> None:
    out = await _all(_items("a", "b", 0.01, "c"))
    assert [x for x in out if isinstance(x, str)] == ["a", "b", "c"]
    assert not any(isinstance(x, Tick) for x in out)  # no deadline, no tick
    assert isinstance(out[0], Idle)  # nothing is ready before the source has run
    # the pause before "c" is announced by an Idle (the moment to write what was gathered)
    assert _names(out).index("c") > _names(out).index("b") + 1


async def test_a_tick_when_the_deadline_passes_while_the_source_is_quiet() -> None:
    deadline = 0.0  # none until "a" is pending (set then, so a stall before it cannot pass it)

    def due() -> float | None:
        return max(0.0, deadline - time.monotonic()) if deadline else None

    out: list[object] = []
    async with contextlib.aclosing(paced(pushed(_items("a", 1.0, "b")), due)) as items:
        async for item in items:
            out.append(item)
            if item == "a":
                deadline = time.monotonic() + 0.02
            if isinstance(item, Tick):
                deadline = 0.0  # the pending text went out: no deadline until the next one
    names = _names(out)
    assert names.count("Tick") == 1  # once per deadline, not once per wait
    assert names.index("a") < names.index("Tick") < names.index("b")


async def test_a_deadline_already_past_ticks_at_the_next_wait() -> None:
    ticks = 0

    def due() -> float | None:
        return 0.0 if ticks == 0 else None

    out: list[object] = []
    async with contextlib.aclosing(paced(pushed(_items(0.05, "a")), due)) as items:
        async for item in items:
            out.append(item)
            ticks += isinstance(item, Tick)
    assert _names(out)[-1] == "a" and ticks == 1


async def test_the_source_error_comes_after_its_items() -> None:
    async def failing() -> AsyncIterator[str]:
        yield "a"
        await asyncio.sleep(0)
        raise ValueError("graph broke")

    out: list[object] = []
    with pytest.raises(ValueError, match="graph broke"):
        async with contextlib.aclosing(paced(pushed(failing()), lambda: None)) as items:
            async for item in items:
                out.append(item)
    assert "a" in out


async def test_closing_early_stops_the_source() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[str]:
        try:
            while True:
                yield "x"
                await asyncio.sleep(0.001)
        finally:
            closed.set()

    async with contextlib.aclosing(paced(pushed(endless()), lambda: 0.001)) as items:
        async for item in items:
            if item == "x":
                break
    assert closed.is_set()


async def test_a_quiet_item_waits_for_the_next_item_that_wakes_the_reader() -> None:
    async def produce(put: object) -> None:
        for step in ("a", 0.01, "b", 0.01, "c"):
            if isinstance(step, str):
                put(step)  # type: ignore[operator]
            else:
                await asyncio.sleep(step)

    out: list[object] = []
    paced_items = paced(produce, lambda: None, quiet=lambda item: item == "b")
    async with contextlib.aclosing(paced_items) as items:
        async for item in items:
            out.append(item)
    # "b" did not wake the reader on its own: it came out with "c", no Idle between them
    assert _names(out) == ["Idle", "a", "Idle", "b", "c"]


async def test_a_quiet_item_comes_out_by_the_deadline() -> None:
    deadline = 0.0

    def due() -> float | None:
        return max(0.0, deadline - time.monotonic()) if deadline else None

    out: list[object] = []
    paced_items = paced(pushed(_items("a", "b", 1.0, "c")), due, quiet=lambda item: item == "b")
    async with contextlib.aclosing(paced_items) as items:
        async for item in items:
            out.append(item)
            if item == "a":
                deadline = time.monotonic() + 0.02
            if isinstance(item, Tick):
                break
    assert [x for x in out if isinstance(x, str)] == ["a", "b"]  # before the tick, not "c"'s
