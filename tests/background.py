"""A coroutine run as a task for the length of a block: a projector, a runner, a fault loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, Any]) -> AsyncIterator[asyncio.Task[Any]]:
    """Run ``work`` while the block runs, then cancel it and wait for it to end.

    A loop that calls Redis must check ``raise_if_cancelled()`` itself: redis-py can swallow a
    cancellation (``eventstore/cancellation.py``), and the wait here would then never end."""
    task = asyncio.create_task(work)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
