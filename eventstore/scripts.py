"""The Lua scripts of the log, loaded from the package and called by SHA."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import ormsgpack

from eventstore.errors import (
    ColdAggregate,
    ConcurrencyConflict,
    EventStoreError,
    InvalidAppend,
    PartialDuplicate,
    TrackingConflict,
)


def append_args(
    mode: str,
    tracking: str,
    plan: Sequence[str | int],
    rows: Sequence[Sequence[str]],
) -> list[Any]:
    """ARGV of one ``append.lua`` call: ``plan`` is (expected, count) per aggregate, flat, in
    KEYS order; ``rows`` the events of every aggregate, 9 text values each, in the same order.

    The plan and the events travel as ONE msgpack argument the script unpacks with
    ``cmsgpack``: redis-py encodes each argument in Python, so one packed value per call
    instead of two per aggregate and one per event keeps the client's work to a single
    ``ormsgpack.packb``. Values must be text: the ``cmsgpack`` of Redis 7.0 knows no msgpack
    ``bin`` type (``text_values`` turns bytes into text)."""
    return [len(plan) // 2, mode, tracking, ormsgpack.packb([plan, rows])]


def text_values(values: Sequence[str | bytes]) -> list[str]:
    """``values`` with UTF-8 bytes decoded to text, for ``append_args``."""
    return [v.decode("utf-8") if isinstance(v, bytes) else v for v in values]


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
