"""Appending a command and waiting for what it causes: writes whose answer is their outcome.

The gateway writes only by appending commands. When the API answers with the result (sign-in,
a profile change, a new chat), the request appends the command and then reads the target
aggregate's own stream until the event the command caused is there — handlers set each
effect's ``causation_id`` to its command's id — or a bound passes: ``CommandPending`` (503 with
``Retry-After``; the command stays in the log and runs later, and the retried request finds its
outcome or appends an idempotent twin).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import schemas
from eventstore.store import EventStore
from gateway.errors import CommandPending
from schemas.envelope import Envelope, Metadata
from schemas.registry import Command

FIRST_POLL_S = 0.005  # a handler usually answers within a few milliseconds
MAX_POLL_S = 0.1


@dataclass(frozen=True)
class Sent:
    """A command in the log: its id (what its effects name as their cause) and whether an
    earlier request with the same idempotency key had appended it already."""

    command_id: str
    duplicate: bool

    def caused(self, envelope: Envelope) -> bool:
        """Whether ``envelope`` is an effect of this command."""
        return envelope.metadata.causation_id == self.command_id


async def append_command(
    store: EventStore, command: Command, *, aggregate_id: str, aggregate_type: str,
    metadata: Metadata, idempotency_key: str | None = None,
) -> Sent:
    """Append ``command`` to its aggregate's shard (once per ``idempotency_key``)."""
    envelope = schemas.registry.envelope(
        command, aggregate_id=aggregate_id, aggregate_type=aggregate_type, metadata=metadata,
    )
    receipt = await store.append_command(envelope, idempotency_key=idempotency_key)
    return Sent(receipt.command_id, receipt.duplicate)


async def outcome(
    store: EventStore, aggregate_id: str, *, after_version: int,
    match: Callable[[Envelope], bool], within_s: float,
) -> Envelope:
    """The first event of ``aggregate_id`` past ``after_version`` that ``match`` accepts,
    waited for up to ``within_s`` seconds (``CommandPending`` after that)."""
    deadline = time.monotonic() + within_s
    pause = FIRST_POLL_S
    while True:
        for envelope in await store.read_aggregate(aggregate_id, after_version=after_version):
            if match(envelope):
                return envelope
            after_version = envelope.version
        left = deadline - time.monotonic()
        if left <= 0:
            raise CommandPending("the request is being processed; retry in a moment")
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, MAX_POLL_S)
