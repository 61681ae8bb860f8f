"""One SSE client's view of the ``LiveHub``: the live messages of one job, in arrival order.

A bounded queue per client, so a slow client never holds up the others: when it overflows the
client is told so (``Signal.OVERFLOW``) and disconnected; it resumes by ``Last-Event-ID``. A
waiting client holds no timer of its own: ``Subscription.next`` parks on a future that a
delivery or the hub's one ticker (``gateway.live_ticker``) completes.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sse_starlette import ServerSentEvent

from projections.live_view import LiveEvent

if TYPE_CHECKING:
    from gateway.live_hub import LiveHub

NEVER = float("inf")


class Frame(ServerSentEvent):
    """An SSE message encoded once when it arrives and written as these same bytes to every
    client of its job (``ensure_bytes`` calls ``encode``)."""

    def __init__(self, data: str, *, event: str, id: str) -> None:
        super().__init__(data, event=event, id=id)
        text = data + event + id
        if "\n" not in text and "\r" not in text:
            # ``encode``'s bytes for single-line fields (JSON text has no raw line breaks),
            # without its buffer and regular expressions: a third of receiving a message.
            sep = self._sep
            self._encoded = f"id: {id}{sep}event: {event}{sep}data: {data}{sep}{sep}".encode()
        else:
            self._encoded = super().encode()

    def encode(self) -> bytes:
        return self._encoded


class Frames(ServerSentEvent):
    """Consecutive messages of one stream written as one chunk: one send through the ASGI
    stack and one socket write for all of them (the write was a quarter of the gateway's CPU,
    and a job's messages mostly arrive in bursts: a run of progress, a stage's end and the
    next one's start). The client reads the same bytes as from one write per message."""

    def __init__(self, frames: Sequence[ServerSentEvent]) -> None:
        super().__init__()
        self.frames = list(frames)

    def encode(self) -> bytes:
        return b"".join(frame.encode() for frame in self.frames)


@dataclass(frozen=True)
class PublishedEvent(LiveEvent):
    """A live message as the hub received it, with its SSE frame."""

    frame: Frame | None = None


class Signal(enum.Enum):
    TIMEOUT = "timeout"  # nothing arrived in time (send a keepalive)
    RESYNC = "resync"  # live messages may have been lost: re-read the job's stream
    OVERFLOW = "overflow"  # the client fell too far behind: disconnect it


class Subscription:
    """One client's view of the hub: the live messages of one job, in arrival order."""

    __slots__ = (
        "_items",
        "_resync",
        "_timed_out",
        "_waiter",
        "closed",
        "deadline",
        "hub",
        "job_id",
        "log_version",
        "max_items",
        "overflowed",
        "shard",
        "top",
    )

    def __init__(self, hub: LiveHub, job_id: str, shard: int, max_items: int) -> None:
        self.hub = hub
        self.job_id = job_id
        self.shard = shard
        self.max_items = max_items
        self.overflowed = False
        self.closed = False
        self._resync = False
        self._timed_out = False
        self._items: deque[LiveEvent] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.deadline = NEVER  # loop time by which a waiting ``next`` returns TIMEOUT
        # the job's version in the log when the last TIMEOUT was given (None: not known)
        self.log_version: int | None = None
        self.top = 0  # the highest version published for the job since this subscription

    def deliver(self, item: LiveEvent) -> None:
        if item.version > self.top:
            self.top = item.version
        if self.overflowed:
            return
        if len(self._items) >= self.max_items:
            self.overflowed = True
            self._items.clear()
        else:
            self._items.append(item)
        self._wake()

    def resync(self) -> None:
        self._resync = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def expire(self, now: float, log_version: int | None) -> None:
        """The ticker's word: a ``next`` waiting past its deadline returns TIMEOUT, with the
        job's version in the log (read by the ticker for all the due clients at once)."""
        if now >= self.deadline:
            self.deadline = NEVER
            self._timed_out = True
            self.log_version = log_version
            self._wake()

    async def next(self, wait_s: float) -> LiveEvent | Signal:
        """The next live message or signal, waiting up to about ``wait_s`` seconds (the hub's
        ticker ends the wait, up to one tick late)."""
        if not (self._items or self.overflowed or self._resync):
            loop = asyncio.get_running_loop()
            self._timed_out = False
            self.deadline = loop.time() + wait_s
            self.hub.ticker.arm(self)
            self._waiter = loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
                self.deadline = NEVER
        if self.overflowed:
            return Signal.OVERFLOW
        if self._resync:
            self._resync = False
            return Signal.RESYNC
        if self._items:
            self._timed_out = False
            return self._items.popleft()
        self._timed_out = False
        return Signal.TIMEOUT

    def take_next(self, version: int) -> LiveEvent | None:
        """The message of ``version`` if it has arrived and is next in line (older ones before
        it are dropped: the caller has them), without waiting; None otherwise, also while a
        signal is pending (``next`` gives it)."""
        if self.overflowed or self._resync:
            return None
        items = self._items
        while items and items[0].version < version:
            items.popleft()
        if items and items[0].version == version:
            return items.popleft()
        return None

    async def published(self, version: int, wait_s: float) -> bool:
        """Wait up to about ``wait_s`` seconds for the job's live message of ``version`` (or a
        later one): True once it was published, False at the deadline or when messages may
        have been lost (a pub/sub reconnect; the resync stays pending for ``next``).

        The snapshot projector publishes a job's message only after writing its snapshot, in
        one script call, so a message at ``version`` means the snapshot holds it: a stream that
        read ``done`` from the log waits here, on no Redis read at all."""
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + wait_s
        self.hub.ticker.arm(self)
        try:
            while self.top < version and not self._resync and self.deadline != NEVER:
                self._waiter = loop.create_future()
                try:
                    await self._waiter  # a message (maybe an earlier version), a resync, the tick
                finally:
                    self._waiter = None
        finally:
            self.deadline = NEVER
        return self.top >= version

    def close(self) -> None:
        """Leave the hub (idempotent)."""
        if not self.closed:
            self.closed = True
            self.hub._remove(self)
