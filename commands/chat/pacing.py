"""Iterate an async stream with deadlines: ``Tick`` when the next item is late, ``Idle`` when
the items ready so far are all out.

The turn handler must flush coalesced text ~50 ms after its first pending token even if the
graph is silent for a while (a slow node between two tokens), so it cannot simply ``async for``
over the graph. ``paced`` runs the source in a task of its own and hands its items over a queue,
yielding a ``Tick`` whenever ``due()`` seconds pass without one. Timing out a wait on a queue
is safe; timing out the graph's own ``__anext__`` would tear the graph down.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class Tick:
    """The deadline given by ``due()`` passed without a new item."""


class Idle:
    """Every item ready so far was handed out; the next one has to be waited for."""


_TICK = Tick()
_IDLE = Idle()


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


async def paced(
    source: AsyncIterator[T], due: Callable[[], float | None]
) -> AsyncGenerator[T | Tick | Idle, None]:
    """Items of ``source`` in order, an ``Idle`` whenever no more are ready (before waiting),
    and a ``Tick`` each time ``due()`` (seconds, None = no deadline) elapses first. An exception of ``source`` is raised here after its items.
    Closing this generator (``contextlib.aclosing``) stops and closes ``source``."""
    queue: asyncio.Queue[T | _End] = asyncio.Queue()

    async def pump() -> None:
        try:
            async for item in source:
                await queue.put(item)
        except Exception as exc:
            await queue.put(_End(exc))
        else:
            await queue.put(_End())
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    task = asyncio.create_task(pump())
    try:
        idle = False
        while True:
            if queue.empty() and not idle:
                idle = True
                yield _IDLE  # nothing more is ready: a good moment to write what was gathered
                continue
            if not queue.empty():
                item = queue.get_nowait()
            elif (delay := due()) is None:
                item = await queue.get()
            else:
                try:
                    # asyncio.timeout, not wait_for: no task per item (one per token adds up).
                    async with asyncio.timeout(delay):
                        item = await queue.get()
                except TimeoutError:
                    yield _TICK
                    continue
            idle = False
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
