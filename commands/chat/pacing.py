"""Iterate what a producer puts, with deadlines: ``Tick`` when the next item is late, ``Idle``
when the items ready so far are all out.

The turn handler must flush coalesced text ~50 ms after its first pending token even if the
graph is silent for a while (a slow node between two tokens), so it cannot simply ``async for``
over the graph. ``paced`` runs the producer in a task of its own; the producer *puts* each item
(the graph's nodes call ``put`` as they emit) onto a queue that ``paced`` reads, yielding a
``Tick`` whenever ``due()`` seconds pass without one. Timing out a wait on a queue is safe;
timing out the graph's own ``__anext__`` would tear the graph down. Putting rather than
yielding is what lets an answer delta go from the node that made it straight to the handler:
an iterator in between (the graph's own queue, read by a pump task) woke two more tasks per
delta.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

Producer = Callable[[Callable[[T], None]], Awaitable[None]]
"""Runs to its end, calling its argument (``put``) with each item in order."""


class Tick:
    """The deadline given by ``due()`` passed without a new item."""


class Idle:
    """Every item ready so far was handed out; the next one has to be waited for."""


_TICK = Tick()
_IDLE = Idle()
# Deadlines closer than this are the same one: ``due()`` is taken against time.monotonic and
# the timer against the loop's clock (uvloop's is cached per iteration, in milliseconds).
_SAME_DEADLINE_S = 0.005


@dataclass(frozen=True)
class _End:
    error: BaseException | None = None


def pushed(source: AsyncIterator[T]) -> Producer[T]:
    """The producer that puts the items of ``source`` (closed when the producer stops)."""

    async def produce(put: Callable[[T], None]) -> None:
        try:
            async for item in source:
                put(item)
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    return produce


def _never(item: object) -> bool:
    return False


async def paced(
    produce: Producer[T], due: Callable[[], float | None],
    quiet: Callable[[T], bool] = _never,
) -> AsyncGenerator[T | Tick | Idle, None]:
    """The items ``produce`` puts, in order, an ``Idle`` whenever no more are ready (before
    waiting), and a ``Tick`` each time ``due()`` (seconds, None = no deadline) elapses first. An
    exception of ``produce`` is raised here after its items. Closing this generator
    (``contextlib.aclosing``) cancels ``produce``.

    An item for which ``quiet(item)`` (asked as it is put, in order) is true does not wake the
    reader: it waits, in order, for the next deadline or the next item that does. The handler
    says so of an answer delta that only adds to text already pending, which nothing reads
    before its deadline anyway.

    One timer per deadline, not one per wait: the deadline is the pending text's (it stays the
    same for every token until the text goes out), and a timeout context per wait (a timer
    scheduled and cancelled for each token) was a tenth of the chat worker's CPU."""
    loop = asyncio.get_running_loop()
    items: deque[T | _End] = deque()
    waiter: asyncio.Future[None] | None = None

    def wake() -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def put(item: T) -> None:
        items.append(item)
        if not quiet(item):
            wake()

    async def pump() -> None:
        try:
            await produce(put)
        except Exception as exc:
            items.append(_End(exc))
        else:
            items.append(_End())
        finally:
            wake()

    timer: asyncio.TimerHandle | None = None
    timer_at = 0.0
    fired = False

    def expire() -> None:
        nonlocal timer, fired
        timer, fired = None, True
        wake()

    task = asyncio.create_task(pump())
    try:
        idle = False
        while True:
            if not items and not idle:
                idle = True
                yield _IDLE  # nothing more is ready: a good moment to write what was gathered
                continue
            if not items:
                delay = due()
                if delay is None:
                    if timer is not None:
                        timer.cancel()
                        timer = None
                else:
                    at = loop.time() + delay
                    if timer is None or abs(at - timer_at) > _SAME_DEADLINE_S:
                        if timer is not None:
                            timer.cancel()
                        timer, timer_at = loop.call_at(at, expire), at
                fired = False
                waiter = loop.create_future()
                try:
                    await waiter
                finally:
                    waiter = None
                if not items:
                    if fired:
                        fired = False
                        yield _TICK
                    continue
            item = items.popleft()
            idle = False
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item
    finally:
        if timer is not None:
            timer.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
