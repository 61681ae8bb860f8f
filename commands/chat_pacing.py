"""Iterate an async stream with deadlines: ``Tick`` when the next item is late.

The turn handler must flush coalesced text ~50 ms after its first pending token even if the
graph is silent for a while (a slow node between two tokens), so it cannot simply ``async for``
over the graph. ``paced`` runs the source in a task of its own and hands its items over a queue,
yielding a ``Tick`` whenever ``due()`` seconds pass without one. Cancelling a ``wait_for`` on a
queue is safe; cancelling one on the graph's own ``__anext__`` would tear the graph down.
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


_TICK = Tick()


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


async def paced(
    source: AsyncIterator[T], due: Callable[[], float | None]
) -> AsyncGenerator[T | Tick, None]:
    """Items of ``source`` in order, with a ``Tick`` each time ``due()`` (seconds, None = no
    deadline) elapses first. An exception of ``source`` is raised here after its items.
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
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), due())
            except TimeoutError:
                yield _TICK
                continue
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
