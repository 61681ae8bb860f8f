"""eventsourcing's ``StoredEvent`` ⇄ the log's envelope fields (see ``schemas.envelope``).

A stored event becomes the 9 envelope values ``append.lua`` copies into the log:

=========  ===================================================================================
``id``     ``uuid5(ES_EVENT_NAMESPACE, "<originator id>:<version>")``: stable across retries
``agg``    the originator id as text
``atype``  ``"eventsourcing"``: marks entries written through this module
``ver``    the originator version (``"="`` mode: the library chooses versions, 0 included)
``type``   the event's topic, e.g. ``eventsourcing.tests.domain:BankAccount.Opened``
``sv``     ``"1"``: ``data`` is the state verbatim, a UTF-8 JSON object
           ``"b64"``: ``data`` is the state in base64 (compressed, encrypted, or not a JSON
           object); ``sv`` carries the encoding because Lua copies only the 9 fields
``data``   the state as above
``meta``   ``"{}"``
``ts``     Unix time of the insert
=========  ===================================================================================
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from uuid import UUID, uuid5

from eventsourcing.persistence import DataError, Notification, StoredEvent

ES_EVENT_NAMESPACE = UUID("5b0c7f3e-8a51-4d2c-9e57-2f1c0a9d6e14")
AGGREGATE_TYPE = "eventsourcing"
SV_JSON = "1"
SV_BASE64 = "b64"
EMPTY_META = "{}"

Fields = Mapping[bytes, bytes]


def event_id(originator_id: UUID | str, version: int) -> str:
    """The deterministic event id of one version of one originator."""
    return str(uuid5(ES_EVENT_NAMESPACE, f"{originator_id}:{version}"))


def encode_state(state: bytes) -> tuple[str, bytes]:
    """``(sv, data)`` for a state: verbatim when it is a UTF-8 JSON object, else base64."""
    try:
        if isinstance(json.loads(state.decode("utf-8")), dict):
            return SV_JSON, state
    except ValueError:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        pass
    return SV_BASE64, base64.b64encode(state)


def decode_state(sv: bytes | None, data: bytes) -> bytes:
    """The original state bytes of an entry; entries of other writers are JSON (``sv`` 1..n)."""
    if sv == SV_BASE64.encode():
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise DataError(f"entry data is not valid base64: {exc}") from exc
    return data


def event_values(stored: StoredEvent, ts: str) -> list[str | bytes]:
    """The 9 per-event values of an ``append.lua`` call, in the script's order."""
    sv, data = encode_state(stored.state)
    version = stored.originator_version
    return [
        event_id(stored.originator_id, version),
        str(stored.originator_id),
        AGGREGATE_TYPE,
        str(version),
        stored.topic,
        sv,
        data,
        EMPTY_META,
        ts,
    ]


def event_fields(stored: StoredEvent, ts: str) -> dict[str, str | bytes]:
    """The envelope field map of a stored event (for writes that bypass the script)."""
    names = ("id", "agg", "atype", "ver", "type", "sv", "data", "meta", "ts")
    return dict(zip(names, event_values(stored, ts), strict=True))


def originator_id_of(text: str, *, uuid_ids: bool) -> UUID | str:
    """A ``UUID`` when ``uuid_ids`` and the text is a canonical UUID, else the text itself."""
    if uuid_ids and len(text) == 36:
        try:
            parsed = UUID(text)
        except ValueError:
            return text
        if str(parsed) == text:
            return parsed
    return text


def stored_event_of(fields: Fields, *, uuid_ids: bool) -> StoredEvent:
    """Rebuild a ``StoredEvent`` from an aggregate- or shard-log entry."""
    try:
        return StoredEvent(
            originator_id=originator_id_of(fields[b"agg"].decode(), uuid_ids=uuid_ids),
            originator_version=int(fields[b"ver"]),
            topic=fields[b"type"].decode(),
            state=decode_state(fields.get(b"sv"), fields.get(b"data", b"")),
        )
    except (KeyError, ValueError) as exc:
        raise DataError(f"entry is not an event envelope: {exc}") from exc


def entry_number(entry_id: bytes) -> int:
    """The integer part of an entry id: ``<position>-0`` in the log, ``<version>-1`` in a stream."""
    return int(entry_id.partition(b"-")[0])


def notification_of(entry_id: bytes, fields: Fields, *, uuid_ids: bool) -> Notification:
    """Rebuild a ``Notification`` from a shard-log entry; its id is the log position."""
    stored = stored_event_of(fields, uuid_ids=uuid_ids)
    return Notification(
        id=entry_number(entry_id),
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=stored.state,
    )
