"""The Lua scripts of the log, loaded from the package and called by SHA."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import ormsgpack

from eventstore.errors import (
    ColdAggregate,
    ConcurrencyConflict,
    EventStoreError,
    InvalidAppend,
    PartialDuplicate,
    TrackingConflict,
)


def pack_events(rows: Sequence[Sequence[str]]) -> bytes:
    """Events of one ``append.lua`` call, 9 values each, as the single msgpack argument the
    script unpacks with ``cmsgpack``: one serialisation per call, strings copied as they are
    (no escaping), instead of one JSON array per event. Values must be text: the ``cmsgpack``
    of Redis 7.0 knows no msgpack ``bin`` type (``text_values`` turns bytes into text)."""
    return ormsgpack.packb(rows)


def text_values(values: Sequence[str | bytes]) -> list[str]:
    """``values`` with UTF-8 bytes decoded to text, for ``pack_events``."""
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]


def pack_event(values: Sequence[str | bytes]) -> bytes:
    """One event's 9 values as the packed argument of a one-event call."""
    return pack_events([text_values(values)])


def script_source(name: str) -> str:
    """The text of ``eventstore/lua/<name>.lua``."""
    return resources.files("eventstore").joinpath(f"lua/{name}.lua").read_text("utf-8")


def translate_script_error(message: str) -> EventStoreError:
    """Turn an error reply of ``append.lua`` into the store's typed error."""
    word, _, rest = message.partition(" ")
    if word == "CONFLICT":
        agg, current, expected = rest.rsplit(" ", 2)
        return ConcurrencyConflict(agg, _int_or_none(current), _int_or_none(expected))
    if word == "DUPLICATE_PARTIAL":
        return PartialDuplicate(f"event {rest} was already recorded, others were not")
    if word == "TRACKING":
        return TrackingConflict(f"tracking position not new: {rest}")
    if word == "COLD":
        return ColdAggregate(f"aggregate {rest} was trimmed from the hot log")
    if word == "BADARGS":
        return InvalidAppend(rest)
    return EventStoreError(message)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
