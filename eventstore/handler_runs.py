"""Bookkeeping of the handler runtime's runs (``eventstore.runtime``), kept cheap because it
runs for every entry: an entry's fields as text, a batch's runs awaited in turn, the worker
slots, and the entries in flight that the heartbeat touches and reapers leave alone."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict, deque
from collections.abc import Coroutine
from typing import Any


def text(value: bytes | str) -> str:
    """``value`` as text (an entry id or stream name from FastStream's client is bytes)."""
    return value.decode() if isinstance(value, bytes) else value


_field_names: dict[bytes, str] = {}  # field names as text, each decoded once (see below)
_NAMES_KEPT = 1024  # entries written by others may carry any names: stay bounded


def text_fields(fields: dict[bytes, bytes]) -> dict[str, str]:
    """An entry's fields as text. FastStream's client answers bytes (its broker has no
    ``decode_responses``): one loop with the names looked up and the values decoded costs
    under half of a per-value type check, and this runs for every entry. Entries share a
    handful of names, kept in a plain ``dict`` (a subscript of an exact dict is cheaper than
    of a subclass with ``__missing__``); a name not met before is learnt in
    ``_learn_names``. A plain loop, not a comprehension: in Python 3.11 a comprehension is a
    function call of its own (1.52 against 1.68 µs for the log's 9 fields)."""
    names = _field_names
    decoded: dict[str, str] = {}
    try:
        for name, value in fields.items():
            decoded[names[name]] = value.decode()
    except (KeyError, AttributeError):  # a new name, or already text (a client that decodes)
        return _learn_names(fields)
    return decoded


def _learn_names(fields: dict[bytes, bytes] | dict[str, str]) -> dict[str, str]:
    for name in fields:
        if isinstance(name, bytes) and len(_field_names) < _NAMES_KEPT:
            _field_names.setdefault(name, name.decode())
    return {text(k): text(v) for k, v in fields.items()}


async def all_of(runs: list[Coroutine[Any, Any, bool]]) -> list[bool]:
    """``asyncio.gather`` of a batch's runs, each in a task, for less: awaiting the tasks in
    turn needs a done-callback only on those still running when their turn comes (gather
    puts one on every task, a scheduled callback per entry). On cancellation (or a task's
    error) the tasks still running are cancelled; their entries stay pending."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(run) for run in runs]
    try:
        return [await task for task in tasks]
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


class Slots:
    """At most ``n`` handler runs at a time across a process's subscribers: an
    ``asyncio.Semaphore`` whose free slot is taken with a decrement (its acquire/release pair
    costs six Python calls per entry); a slot given back passes straight to the oldest
    waiter, so no newcomer overtakes one. A per-message reader waits in ``until_free`` before
    it reads again (``eventstore.per_message``)."""

    def __init__(self, n: int) -> None:
        self.free = n
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._gates: list[tuple[int, asyncio.Future[None]]] = []  # (free slots awaited, waiter)

    async def take(self) -> None:
        """A slot: a free one, else the next one given back."""
        if self.free > 0:
            self.free -= 1
        else:
            await self.wait()

    async def wait(self) -> None:
        """Wait for a slot handed over by ``give`` (when none is ``free``)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as it was cancelled: pass it on
            raise

    def give(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():  # skip the cancelled
                waiter.set_result(None)
                return
        self.free += 1
        if self._gates:
            self._open(self.free)

    async def until_free(self, n: int) -> None:
        """Until ``n`` slots are free (taking none), or ``open_gates``. Slots given back go
        to those waiting in ``take`` first, so they pass before anything read after this."""
        if self.free >= n:
            return
        gate = asyncio.get_running_loop().create_future()
        self._gates.append((n, gate))
        try:
            await gate
        finally:
            self._gates = [(m, g) for m, g in self._gates if g is not gate]

    def open_gates(self) -> None:
        """Let everyone waiting in ``until_free`` go (the runner stops)."""
        self._open(None)

    def _open(self, free: int | None) -> None:
        for n, gate in self._gates:
            if (free is None or n <= free) and not gate.done():
                gate.set_result(None)


class InFlight:
    """The entries being handled or waiting for their due time, by stream, a batch at a time
    (kept per batch: a dict entry per batch, not a count per entry, on the main path): the
    heartbeat touches them, a reaper leaves them alone."""

    def __init__(self) -> None:
        self._held: dict[str, dict[int, list[str]]] = defaultdict(dict)
        self._tokens = itertools.count()

    def hold(self, stream: str, entry_ids: list[str]) -> int:
        token = next(self._tokens)
        self._held[stream][token] = entry_ids
        return token

    def release(self, stream: str, token: int) -> None:
        self._held[stream].pop(token, None)

    def holds(self, stream: str, entry_id: str) -> bool:
        return any(entry_id in ids for ids in self._held[stream].values())

    def by_stream(self) -> list[tuple[str, list[str]]]:
        """Every stream's held entry ids, each once."""
        return [(stream, list(dict.fromkeys(itertools.chain.from_iterable(batches.values()))))
                for stream, batches in list(self._held.items()) if batches]
