"""What a reader's FastStream message becomes: the ``Delivery`` of each entry, except the
entries of classes the group does not handle, which need no decoding at all."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventstore.groups import ATTEMPTS, Delivery
from eventstore.handler_runs import text, text_fields

SKIPPED_KEPT = 1024  # type names remembered (entries written by others may carry any type)


class Intake:
    """Turns a FastStream message's raw entries into deliveries; ``ignores(name)``: the group
    acks entries of type ``name`` unread (a known class it does not handle)."""

    def __init__(self, ignores: Callable[[str], bool]) -> None:
        self._ignores = ignores
        # Type names as FastStream's client answers them → the name as text when this group
        # acks such entries unread, else None; learnt as they are met.
        self._skipped: dict[Any, str | None] = {}

    def deliveries(
        self, shard: int, stream: str, raw: Any, crashed: int, *,
        source: bool = False, unread: list[bytes] | None = None,
    ) -> list[Delivery]:
        """The entries of ``raw`` (a FastStream message's ``raw_message``). A first delivery of
        a ``source`` entry (the shard log: it carries no retry marks) of a class the group does
        not handle is acked unread, and most entries of the events log are such for every group
        but the projector: its id as the client answered it goes to ``unread`` when given (no
        ``Delivery``, no decoding), else it keeps its type only (``settled_at_once``)."""
        data = raw["data"]
        entries = data if isinstance(data, list) else [data]
        deliveries = []
        skipped = self._skipped if source and not crashed else None
        for entry_id, raw_fields in zip(raw["message_ids"], entries, strict=True):
            if raw_fields is None:  # claimed after it was trimmed: nothing left to handle
                continue
            if skipped is not None:
                kind = raw_fields.get(b"type")
                name = skipped[kind] if kind in skipped else self._learn(kind)
                if name is not None and unread is not None:
                    unread.append(entry_id)
                    continue
                if name is not None:
                    deliveries.append(Delivery(shard, stream, text(entry_id), {"type": name}, 0))
                    continue
            fields = text_fields(raw_fields)
            attempts = int(fields.get(ATTEMPTS, 0)) + crashed
            deliveries.append(Delivery(shard, stream, text(entry_id), fields, attempts))
        return deliveries

    def _learn(self, kind: Any) -> str | None:
        name = kind.decode() if isinstance(kind, bytes) else None
        if name is not None and not self._ignores(name):
            name = None
        if len(self._skipped) < SKIPPED_KEPT:
            self._skipped[kind] = name
        return name
