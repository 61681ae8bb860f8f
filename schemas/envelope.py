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

import json
import time
from typing import Any
from uuid import UUID, uuid4

import orjson
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr


class Metadata(BaseModel):
    """Where a message came from: the thread of causation through the system."""

    model_config = ConfigDict(frozen=True, extra="allow")

    correlation_id: str | None = None
    causation_id: str | None = None
    user_id: str | None = None
    trace: dict[str, str] = Field(default_factory=dict)


class Envelope(BaseModel):
    """A message as stored in the log, before its ``data`` is decoded into a message class."""

    model_config = ConfigDict(frozen=True)

    id: UUID = Field(default_factory=uuid4)
    aggregate_id: str
    aggregate_type: str = ""
    version: int = 0
    type: str
    schema_version: int = 1
    data: dict[str, Any] = Field(default_factory=dict)
    metadata: Metadata = Field(default_factory=Metadata)
    timestamp: float = Field(default_factory=time.time)
    position: int | None = None  # shard-log position, known once recorded
    shard: int | None = None
    # True when ``data`` was dumped from a validated message (``MessageRegistry.envelope``):
    # the store need not validate it again.
    _validated: bool = PrivateAttr(default=False)

    @property
    def validated(self) -> bool:
        return self._validated

    def to_fields(self) -> dict[str, str]:
        """The flat Redis field map of this envelope (without ``pos``)."""
        return {
            "id": str(self.id),
            "agg": self.aggregate_id,
            "atype": self.aggregate_type,
            "ver": str(self.version),
            "type": self.type,
            "sv": str(self.schema_version),
            "data": dump_json(self.data),
            "meta": _dump_metadata(self.metadata),
            "ts": repr(self.timestamp),
        }

    @classmethod
    def from_fields(
        cls, fields: dict[str, str], *, position: int | None = None, shard: int | None = None
    ) -> Envelope:
        """Rebuild an envelope from a Redis entry's fields; raises ``MalformedEntry``."""
        try:
            pos = fields.get("pos")
            meta = fields.get("meta") or "{}"
            return cls(
                id=UUID(fields["id"]),
                aggregate_id=fields["agg"],
                aggregate_type=fields.get("atype", ""),
                version=int(fields.get("ver", "0")),
                type=fields["type"],
                schema_version=int(fields.get("sv", "1")),
                data=orjson.loads(fields.get("data") or "{}"),
                metadata=_EMPTY_METADATA if meta == "{}" else Metadata.model_validate_json(meta),
                timestamp=float(fields.get("ts", "0")),
                position=position if position is not None else (int(pos) if pos else None),
                shard=shard,
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise MalformedEntry(f"entry is not a valid envelope: {exc}") from exc


_EMPTY_METADATA = Metadata()


def dump_json(value: Any) -> str:
    """Compact UTF-8 JSON text; orjson where it can (several times faster than ``json``),
    the standard library for what orjson refuses (integers beyond 64 bits, non-text keys)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _dump_metadata(metadata: Metadata) -> str:
    if metadata == _EMPTY_METADATA:
        return "{}"
    return metadata.model_dump_json(exclude_defaults=True)


class MalformedEntry(ValueError):
    """A stream entry whose fields do not form an envelope."""
