"""Strict parsing of what clients put in query strings, headers and cursors.

``str.isdigit()`` is true for ``²`` and other Unicode digits that ``int()`` refuses, and
``int()`` refuses more than 4,300 digits: both once turned bad input into a 500. Every integer
a client sends goes through ``strict_int``; every JSON text a client sends (bodies, cursors)
through ``load_json``, which bounds nesting so a deep document is a 4xx, not a
``RecursionError``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request

from gateway.errors import InvalidRequest

_DIGITS = re.compile(r"[0-9]{1,18}")  # ASCII only; 18 digits always fit an int64
IDEMPOTENCY_HEADER = "x-idempotency-key"
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, no spaces
MAX_JSON_DEPTH = 32  # API bodies nest a few levels; nothing legitimate comes near this


def parse_int(raw: str | None) -> int | None:
    """``raw`` as a non-negative integer of ASCII digits (surrounding spaces allowed), else
    None: Unicode digits, signs, fractions and numbers past 18 digits are not integers here."""
    if raw is None:
        return None
    text = raw.strip(" \t")
    return int(text) if _DIGITS.fullmatch(text) else None


def strict_int(raw: str | None, field: str, *, minimum: int, maximum: int,
               default: int | None = None) -> int:
    """The integer ``field`` holds, in ``minimum..maximum``; ``default`` when absent or empty.

    Raises ``InvalidRequest`` (422 naming ``field``) for anything else.
    """
    if (raw is None or raw == "") and default is not None:
        return default
    value = parse_int(raw)
    if value is None or not minimum <= value <= maximum:
        raise InvalidRequest(field, f"must be an integer in {minimum}..{maximum}")
    return value


class JsonTooDeep(ValueError):
    """A JSON text nested deeper than the API ever needs."""


def load_json(raw: str | bytes | bytearray, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses documents nested deeper than ``max_depth`` (``JsonTooDeep``,
    a ``ValueError`` like every other parse failure) before the parser could recurse."""
    if _depth(raw) > max_depth:
        raise JsonTooDeep(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except RecursionError as exc:  # unreachable after the depth check; kept as a guard
        raise JsonTooDeep("JSON nested too deeply") from exc


def _depth(raw: str | bytes | bytearray) -> int:
    """The deepest bracket nesting of a JSON text (brackets inside strings do not count)."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    opening = data.count(b"[") + data.count(b"{")
    if opening <= MAX_JSON_DEPTH:  # cannot nest deeper than it has brackets: skip the scan
        return opening
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > deepest:
                deepest = depth
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


class BigintConvertor(Convertor[int]):
    """A path id of 1..18 ASCII digits (Starlette's ``int`` accepts any length, and ``int()``
    of 4,300+ digits raises while routing: a 500 before any handler runs)."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(int(value))


# Route paths are compiled when ``gateway.app`` builds ROUTES, after importing this module.
register_url_convertor("bigint", BigintConvertor())


def idempotency_key(request: Request) -> str | None:
    """The request's ``X-Idempotency-Key`` (None when absent or blank); 400 unless it is 1..200
    printable ASCII characters."""
    raw = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
    if not raw:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(raw):
        raise InvalidRequest("X-Idempotency-Key", "must be 1..200 printable ASCII characters")
    return raw
