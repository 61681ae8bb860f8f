"""The Lua scripts of the log, loaded from the package and called by SHA."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import orjson

from eventstore.errors import (
    ConcurrencyConflict,
    EventStoreError,
    InvalidAppend,
    PartialDuplicate,
    TrackingConflict,
)


def pack_event(values: Sequence[str | bytes]) -> str:
    """One event's 9 values as the single JSON-array argument ``append.lua`` expects."""
    return orjson.dumps(
        [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]
    ).decode()


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
    if word == "BADARGS":
        return InvalidAppend(rest)
    return EventStoreError(message)


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
