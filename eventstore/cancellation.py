"""Cancellation that a library swallowed, delivered again at the caller's next step.

redis-py sends every command under ``asyncio.wait_for`` when the client has a socket timeout
(its default since 8.0). On Python 3.11 ``wait_for`` returns the inner result when the
cancellation arrives in the loop turn in which the command completes (CPython gh-86296, fixed
in 3.12): the ``CancelledError`` is dropped, but the task stays marked as cancelling. A loop
that calls ``raise_if_cancelled()`` at each step therefore stops within one step of a
cancellation, whichever call absorbed it.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise ``CancelledError`` when the current task was cancelled and has not yet seen it
    (also when a driver turned the cancellation into an error of its own, as asyncpg does
    with the server's "canceling statement")."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
