"""The one envelope every reader of the log shares (Lua, Python, ``redis-cli``).

An entry of ``{tag}:events``, ``{tag}:agg:<id>`` or ``{tag}:commands`` is a flat Redis hash of
string fields, so it can be read by any tool:

=========  ==============================================================
field      meaning
=========  ==============================================================
``id``     event id / command id (UUID text); the idempotency key of an append
``agg``    aggregate id (events) / target aggregate id (commands)
``atype``  aggregate type, e.g. ``scan_job``
``ver``    aggregate version after this event (events); ``0`` for commands
``type``   wire name of the message class (see ``schemas.registry``)
``sv``     schema version of ``data``
``data``   JSON object: the message body
``meta``   JSON object: correlation_id, causation_id, user_id, trace
``ts``     Unix time in seconds (float text) when the message was created
``pos``    shard-log position (only in the aggregate stream, for cross-reference)
=========  ==============================================================

Entry ids: in ``{tag}:events`` ``<position>-0`` (contiguous from 1); in ``{tag}:agg:<id>``
``<version>-1``; in ``{tag}:commands`` Redis auto ids.
"""

from __future__ import annotations

import functools
import json
import os
import re
import time
from typing import Any, NamedTuple, Protocol
from uuid import UUID, SafeUUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class Metadata(BaseModel):
    """Where a message came from: the thread of causation through the system."""

    model_config = ConfigDict(frozen=True, extra="allow")

    correlation_id: str | None = None
    causation_id: str | None = None
    user_id: str | None = None
    trace: dict[str, str] = Field(default_factory=dict)


EMPTY_METADATA = Metadata()  # frozen, so shared by every envelope without metadata
WIRE_FIELDS = ("id", "agg", "atype", "ver", "type", "sv", "data", "meta", "ts")


class Envelope(BaseModel):
    """A message as stored in the log, before its ``data`` is decoded into a message class."""

    model_config = ConfigDict(frozen=True)

    id: UUID = Field(default_factory=lambda: new_id())
    aggregate_id: str
    aggregate_type: str = ""
    version: int = 0
    type: str
    schema_version: int = 1
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=lambda: EMPTY_METADATA)
    timestamp: float = Field(default_factory=time.time)
    position: int | None = None  # shard-log position, known once recorded
    shard: int | None = None
    # True when ``data`` was dumped from a validated message (``MessageRegistry.envelope``):
    # the store need not validate it again.
    _validated: bool = PrivateAttr(default=False)

    @property
    def validated(self) -> bool:
        # Read where pydantic keeps it: ``self._validated`` goes through BaseModel.__getattr__
        # after a failed lookup, 2 µs, as much as the rest of an append's per-event work.
        private = self.__pydantic_private__
        return bool(private and private.get("_validated"))

    def to_fields(self) -> dict[str, str]:
        """The flat Redis field map of this envelope (without ``pos``)."""
        return dict(zip(WIRE_FIELDS, self.wire_values(), strict=True))

    def wire_values(self) -> list[str]:
        """The values of ``to_fields``, in ``WIRE_FIELDS`` order (an event of ``append.lua``)."""
        return [
            str(self.id),
            self.aggregate_id,
            self.aggregate_type,
            str(self.version),
            self.type,
            str(self.schema_version),
            dump_json(self.data),
            _dump_metadata(self.metadata),
            repr(self.timestamp),
        ]

    @classmethod
    def from_fields(
        cls,
        fields: dict[str, str],
        *,
        position: int | None = None,
        shard: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> Envelope:
        """Rebuild an envelope from a Redis entry's fields; raises ``MalformedEntry``.

        Log entries are trusted: the store validated them before they were appended, so each
        field is only converted to its type (which still rejects a malformed entry), without
        pydantic's validation of the envelope. That validation, its private-attribute set-up
        and the parsing of ids and metadata cost three quarters of a projector's decoding.
        The message in ``data`` is validated by whoever decodes it (``MessageRegistry``).
        ``data``: the entry's ``data`` field already parsed (a reader that met the same text
        before), so it is not parsed again.
        """
        try:
            get = fields.get
            pos = get("pos")
            if data is None:
                data = orjson.loads(get("data") or "{}")
                if type(data) is not dict:
                    raise TypeError(f"data is a {type(data).__name__}, not an object")
            values = {
                "id": _uuid(fields["id"]),
                "aggregate_id": fields["agg"],
                "aggregate_type": get("atype", ""),
                "version": int(get("ver", "0")),
                "type": fields["type"],
                "schema_version": int(get("sv", "1")),
                "data": data,
                "metadata": _metadata(get("meta") or "{}"),
                "timestamp": float(get("ts", "0")),
                "position": position if position is not None else (int(pos) if pos else None),
                "shard": shard,
            }
        except (KeyError, ValueError, TypeError) as exc:
            raise MalformedEntry(f"entry is not a valid envelope: {exc}") from exc
        return cls.trusted(values)

    @classmethod
    def trusted(cls, values: dict[str, Any], *, validated: bool = False) -> Envelope:
        """An envelope of ``values`` that are already of their types (every field), without
        validation: ``model_construct``'s work without its per-field loop over defaults and
        aliases, which cost as much as the rest. ``validated``: ``data`` is a dumped message."""
        envelope = _new(cls)  # BaseModel has no __new__; this skips its lookup
        _set_dict(envelope, values)
        _set_fields_set(envelope, _FIELD_NAMES.copy())
        _set_extra(envelope, None)
        _set_private(envelope, {"_validated": validated})
        return envelope


_FIELD_NAMES = set(Envelope.model_fields)  # copied per envelope (faster than building one)
# ``object.__setattr__`` of BaseModel's slots, through their descriptors: the name lookup
# skipped, a third of ``trusted``'s cost (one envelope per event a projector decodes).
_new = object.__new__
_set_dict, _set_fields_set, _set_extra, _set_private = (
    BaseModel.__dict__[name].__set__
    for name in ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__")
)


class EnvelopeView(Protocol):
    """What a reader of a recorded event sees of its envelope: an ``Envelope``, or the
    ``LogEnvelope`` a projector decodes (projection handlers take either)."""

    @property
    def id(self) -> UUID: ...
    @property
    def aggregate_id(self) -> str: ...
    @property
    def aggregate_type(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def metadata(self) -> Metadata: ...
    @property
    def timestamp(self) -> float: ...
    @property
    def position(self) -> int | None: ...
    @property
    def shard(self) -> int | None: ...


class LogEnvelope(NamedTuple):
    """A log entry's envelope as a projector reads it (``log_envelope``): every field checked
    as ``Envelope.from_fields`` checks it, but only the fields projections read are kept as
    values; the id (a ``UUID``) and the ``data`` dict are built when asked for. Building an
    ``Envelope`` per event (its dict, model and UUID) cost as much as the rest of decoding a
    cached event, and projections never read the id or the data (they read the message)."""

    aggregate_id: str
    aggregate_type: str
    version: int
    type: str
    schema_version: int
    metadata: Metadata
    timestamp: float
    position: int | None
    shard: int | None
    fields: dict[str, str] | list[bytes]  # the entry as read (see ``schemas.envelope_sent``)

    @property
    def id(self) -> UUID:
        return _uuid(self.field_map()["id"])

    def field_map(self) -> dict[str, str]:
        """The entry's fields by name (built when read undecoded,
        ``schemas.envelope_sent``)."""
        fields = self.fields
        return fields if isinstance(fields, dict) else decode_fields(fields)

    @property
    def data(self) -> dict[str, Any]:
        """The ``data`` field parsed (a new dict per call; ``log_envelope`` does not check it:
        its reader validates it as the message, see ``MessageRegistry.decode_json``)."""
        text = self.field_map().get("data") or "{}"
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError:  # what orjson refuses (integers beyond 64 bits)
            data = json.loads(text)
        if type(data) is not dict:
            raise MalformedEntry(f"data is a {type(data).__name__}, not an object")
        return data

    def envelope(self) -> Envelope:
        """The full ``Envelope`` of the same entry."""
        return Envelope.from_fields(self.field_map(), position=self.position, shard=self.shard)


_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
).fullmatch
_new_tuple = tuple.__new__


def log_envelope(fields: dict[str, str], *, position: int, shard: int) -> LogEnvelope:
    """The entry's ``LogEnvelope``; raises ``MalformedEntry`` for every entry whose fields
    ``Envelope.from_fields`` refuses, except for its ``data``, which the caller must validate
    (a projector validates it as the message class, ``MessageRegistry.decode_json``)."""
    try:
        ident = fields["id"]  # subscripts, not ``get``: the store writes every field
        if _CANONICAL_UUID(ident) is None:
            UUID(ident)  # the other forms ``UUID`` accepts (braces, ``urn:uuid:``)
        return _new_tuple(  # a NamedTuple's ``__new__`` without its keyword handling
            LogEnvelope,
            (
                fields["agg"],
                fields["atype"],
                int(fields["ver"]),
                fields["type"],
                int(fields["sv"]),
                _metadata(fields["meta"] or "{}"),
                float(fields["ts"]),
                position,
                shard,
                fields,
            ),
        )
    except KeyError as exc:
        if exc.args and exc.args[0] in _OPTIONAL_FIELDS:  # left out: read with its default
            return log_envelope(_OPTIONAL_FIELDS | fields, position=position, shard=shard)
        raise MalformedEntry(f"entry is not a valid envelope: {exc}") from exc
    except (ValueError, TypeError) as exc:
        raise MalformedEntry(f"entry is not a valid envelope: {exc}") from exc


def decode_fields(flat: list[bytes]) -> dict[str, str]:
    """An undecoded entry's fields by name, as a client that decodes replies gives them."""
    names, values = flat[0::2], flat[1::2]
    return {name.decode(): value.decode() for name, value in zip(names, values, strict=True)}


# The defaults of ``from_fields`` for the fields an entry may leave out.
_OPTIONAL_FIELDS = {"atype": "", "ver": "0", "sv": "1", "data": "{}", "meta": "{}", "ts": "0"}


_UUID_NEW = UUID.__new__
_SAFE_UNKNOWN = SafeUUID.unknown


def _uuid(text: str) -> UUID:
    """``UUID(text)`` for the canonical 36-character form in a third of the time (what the
    ``UUID`` constructor does once it has the integer); any other form goes to ``UUID``."""
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        return UUID(text)
    value = _UUID_NEW(UUID)
    object.__setattr__(value, "int", int(text.replace("-", ""), 16))
    object.__setattr__(value, "is_safe", _SAFE_UNKNOWN)
    return value


# Random version-4 UUIDs drawn from one ``os.urandom`` read per 256 ids: ``uuid4()`` reads 16
# bytes per id (a system call) and runs ``UUID.__init__``'s checks, which together were a third
# of creating an event. Same randomness (the kernel's CSPRNG), same bits as ``uuid4``.
_ID_BATCH = 256
_ids: list[int] = []  # the batch not yet handed out; emptied in a forked child
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (4 << 76) | (0x8000 << 48)
os.register_at_fork(after_in_child=_ids.clear)  # a child must never repeat its parent's ids


def new_id() -> UUID:
    """A new random event id (a version-4 UUID, as ``uuid4()``)."""
    try:
        value = _ids.pop()  # atomic: no two callers get the same one
    except IndexError:
        value = _refill_ids()
    uid = _UUID_NEW(UUID)
    object.__setattr__(uid, "int", value)
    object.__setattr__(uid, "is_safe", _SAFE_UNKNOWN)
    return uid


def _refill_ids() -> int:
    data = os.urandom(16 * _ID_BATCH)
    values = [
        (int.from_bytes(data[i : i + 16], "big") & _V4_CLEAR) | _V4_SET
        for i in range(0, len(data), 16)
    ]
    first = values.pop()
    _ids.extend(values)  # atomic, as pop() is
    return first


@functools.lru_cache(maxsize=4096)
def _metadata(text: str) -> Metadata:
    """Metadata parsed once per distinct text: the events of one scan or chat turn carry the
    same metadata (correlation id, user), and ``Metadata`` is frozen, so they share it."""
    return EMPTY_METADATA if text == "{}" else validate_metadata_json(text)


# ``Metadata.model_validate_json`` without its wrapper (see ``MessageRegistry.decode_json``)
validate_metadata_json = Metadata.__pydantic_validator__.validate_json


def dump_json(value: Any) -> str:
    """Compact UTF-8 JSON text; orjson where it can (several times faster than ``json``),
    the standard library for what orjson refuses (integers beyond 64 bits, non-text keys)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _dump_metadata(metadata: Metadata) -> str:
    if metadata is EMPTY_METADATA or not (metadata.model_fields_set or metadata.model_extra):
        return "{}"
    return metadata.model_dump_json(exclude_defaults=True)


class MalformedEntry(ValueError):
    """A stream entry whose fields do not form an envelope."""
