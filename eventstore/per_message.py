"""Per-message handling (``RunnerOptions.per_message``): each entry of a read runs on its own,
so a slow handler (a model call) holds up no other entry of its read.

The reader stays a FastStream batch subscriber: one FastStream call per XREADGROUP, which starts
a task for each due entry and returns once every one holds a worker slot (at most ``workers``
runs per process) and ``read`` slots are free again; after a read of fewer than ``read``
entries, the runner's linger later (``eventstore.runtime``). A read takes at most ``read``
entries (``per_message_read``: the process's slots shared out between its shards), so a busy
process does not sit on entries it cannot start while another replica (one KEDA just started)
idles.
What a reader read and has not started is at most one read: one already waiting in Redis when
the slots filled up, or one of several readers let go at once by the same freed slots. That
is at most ``workers`` entries for the shards' streams of a process (as many again when the
retry streams are busy too), where it was up to ``batch`` per reader.

Each entry is acked with the runner's next ack batch once settled. FastStream's own
per-message mode (``max_workers``) sent every entry through its task group, memory stream and
middleware, which cost several times the entry's own settling (``eco2 bench``-style
micro-bench: about 500 against 100-140 µs of client CPU per entry on a slow host).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from eventstore.acks import AckBatches
from eventstore.groups import Delivery
from eventstore.handler_runs import InFlight, Slots

HandleTaken = Callable[[Delivery], Awaitable[bool]]  # runs an entry whose slot is taken


def per_message_read(workers: int, batch: int, shards: int) -> int:
    """Entries a per-message reader reads at a time: its shard's share of the process's
    ``workers`` slots (so that the reads of all its ``shards``, arriving at once, find a slot
    each), at least one, at most ``batch``. Not a share among the retry streams' readers as
    well: those are mostly idle, and each entry fewer per read costs: a FastStream read is
    ~270 µs of client CPU, so reads of 16 entries instead of 100 cost ~15 µs more per entry
    (no-op handler, 2-core host), negligible beside a handler slow enough for this mode but
    not beside a no-op one. With one shard, half the slots: a read of all of them would wait
    for every run to finish before reading again (waves), and a light load would run one entry
    at a time."""
    return max(1, min(batch, workers // max(shards, 2)))


class PerMessageRuns:
    """The runs a per-message reader started: held in flight (the heartbeat touches them, a
    reaper leaves them alone) from the read until settled, and awaited by a stop."""

    def __init__(
        self, in_flight: InFlight, slots: Slots, acks: AckBatches, handle: HandleTaken,
        stopping: asyncio.Event, read: int,
    ) -> None:
        self._stopping = stopping  # set: start nothing more, the stop hands the rest back
        self._read = read  # entries per read (``per_message_read``)
        self._in_flight = in_flight
        self._slots = slots
        self._acks = acks
        self._handle = handle
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    async def start(self, stream: str, due: list[Delivery]) -> None:
        """A task for each of ``due`` (entries of ``stream`` due now), each once a worker slot
        is free; then wait until a whole read's worth of slots is free, so that the reader's
        next read finds a slot for every entry rather than holding them (pending, touched by
        the heartbeat, out of other consumers' reach) until this process's runs finish. An
        entry not started when the runner stops (or a stop cancels the wait) stays pending,
        and the stop hands it back."""
        # Held from the read on: the heartbeat touches an entry still waiting for its slot.
        tokens = [self._in_flight.hold(stream, [d.entry_id]) for d in due]
        started = 0
        try:
            loop = asyncio.get_running_loop()
            for delivery, token in zip(due, tokens, strict=True):
                if self._stopping.is_set():
                    break
                await self._slots.take()
                if self._stopping.is_set():  # a slot came free after the stop began
                    self._slots.give()
                    break
                task = loop.create_task(self._run(delivery, token))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started += 1
        finally:
            for token in tokens[started:]:
                self._in_flight.release(stream, token)
        if self._slots.free < self._read and not self._stopping.is_set():
            await self._slots.until_free(self._read)  # the stop opens it (``Slots.open_gates``)

    async def _run(self, delivery: Delivery, token: int) -> None:
        try:
            settled = await self._handle(delivery)
        finally:
            self._in_flight.release(delivery.stream, token)
        if settled:
            self._acks.add(delivery.stream, [delivery.entry_id])

    async def wait(self) -> None:
        """Until every run started so far has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))
