"""Entries a runner keeps until their due time, in process: a retry due sooner than the retry
stream would bring it back. Each is held in flight meanwhile (no claim takes it, the heartbeat
keeps it fresh), handled when due, and handed back to the retry stream, due time kept, when the
runner stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from eventstore.groups import ConsumerGroup, Delivery
from eventstore.handler_runs import InFlight

log = logging.getLogger(__name__)


class Parked:
    def __init__(
        self, group: ConsumerGroup, in_flight: InFlight,
        handle: Callable[[Delivery], Awaitable[bool]],
    ) -> None:
        self.group = group
        self._in_flight = in_flight
        self._handle = handle  # True: settled, ack it
        self._waiting: dict[asyncio.Task[None], Delivery] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    def park(self, delivery: Delivery, wait: float) -> None:
        token = self._in_flight.hold(delivery.stream, [delivery.entry_id])  # nobody claims it
        task = asyncio.create_task(self._when_due(delivery, wait, token))
        self._waiting[task] = delivery
        task.add_done_callback(lambda done: self._waiting.pop(done, None))

    async def _when_due(self, delivery: Delivery, wait: float, token: int) -> None:
        try:
            await asyncio.sleep(wait)
            task = asyncio.current_task()
            if task is not None:
                self._waiting.pop(task, None)
            if await self._handle(delivery):
                await self.group.ack(delivery.stream, delivery.entry_id)
        finally:
            self._in_flight.release(delivery.stream, token)

    async def hand_back(self) -> None:
        """On stop, hand entries still waiting back to the retry stream (due time kept), so
        the next consumer does not count the stop as a crashed delivery."""
        for task, delivery in list(self._waiting.items()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            try:
                await self.group.requeue(delivery, {})
            except Exception:
                log.exception("could not hand back %s; a claim will", delivery.origin)
