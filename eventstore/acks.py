"""Acks of settled entries, batched: one pipelined round trip for all of a runner's readers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from eventstore.groups import ConsumerGroup

log = logging.getLogger(__name__)

ACK_DELAY_S = 0.05  # at most; a tenth of claim_idle_ms when that is shorter


class AckBatches:
    """What the readers settled, acked together: every ``delay_s`` one round trip (an XACK per
    stream, pipelined) for the entries of every reader of the runner, not one XACK per
    FastStream message. Until then an entry stays pending, far from ``claim_idle_ms`` (the
    heartbeat touched it a fifth of that ago at most): a crash in between leaves it to a
    claim, and its handler, idempotent as every handler under at-least-once delivery, runs
    again. A failed ack is logged and left to claims the same way."""

    def __init__(self, group: ConsumerGroup, delay_s: float) -> None:
        self.group = group
        self.delay_s = delay_s
        self._ids: dict[str, list[str | bytes]] = {}
        self._due: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()  # set by ``close``: the flush due goes at once

    def add(self, stream: str, entry_ids: Sequence[str | bytes]) -> None:
        """Ack ``entry_ids`` of ``stream`` with the next batch (as text or as the client's bytes)."""
        if not entry_ids:
            return
        self._ids.setdefault(stream, []).extend(entry_ids)
        if self._due is None:
            self._due = asyncio.get_running_loop().create_task(self._after_delay())

    async def _after_delay(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.delay_s):
                await self._closing.wait()
        try:
            await self.flush()
        finally:  # what was settled during the flush waits for the next one
            self._due = None
            if self._ids:
                self._due = asyncio.get_running_loop().create_task(self._after_delay())

    async def flush(self) -> None:
        ids, self._ids = self._ids, {}
        if not ids:
            return
        try:
            async with self.group.redis.pipeline(transaction=False) as pipe:
                for stream, entry_ids in ids.items():
                    pipe.xack(stream, self.group.group, *entry_ids)
                await pipe.execute()
        except Exception:
            log.exception("acking %d settled entries failed; a claim will take them",
                          sum(map(len, ids.values())))

    async def close(self) -> None:
        """Ack what is waiting (on stop, once the readers are done): the flush due goes now and
        is waited for, not cancelled, so no XACK already sent is cut short and its entries are
        not taken for left-over ones (``Runner._hand_back``)."""
        self._closing.set()
        while (due := self._due) is not None:
            await due
        await self.flush()
