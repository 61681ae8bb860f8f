"""Where an effect comes from: its deterministic id and the metadata linking it to its cause.

Handlers derive the ids of the events they append from their cause (``effect_id``), so a
redelivered message re-appends nothing (the store drops events whose ids it already holds), and
every effect carries its cause's correlation, causation and trace (``caused_by``).
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from eventstore.tracing import trace_context
from schemas.envelope import Envelope, Metadata

# uuid5 namespace of every id a handler derives; changing it would re-run old jobs' effects.
EFFECT_NAMESPACE = uuid.UUID("6f1d8a52-3c0e-5b7a-9d4e-2a8c1b7e5f30")
_NAMESPACE_BYTES = EFFECT_NAMESPACE.bytes
# ``uuid.uuid5``'s bits, set on the digest's integer directly: its ``UUID.__init__`` (argument
# checks, then the version bits) was more than half of deriving an id, and a chat turn derives
# one per event it appends.
_V5_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V5_SET = (5 << 76) | (0x8000 << 48)
_new_uuid = object.__new__
_set = object.__setattr__
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def effect_id(*parts: str) -> uuid.UUID:
    """A deterministic event id for one effect, e.g. ``effect_id(job_id, "vision")``: the
    ``uuid.uuid5`` of the parts joined by ``\\x1f`` in ``EFFECT_NAMESPACE``.

    The same cause and step always give the same id, so a redelivered message re-appends
    nothing.
    """
    digest = hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join(parts).encode()).digest()
    uid = _new_uuid(uuid.UUID)
    _set(uid, "int", (int.from_bytes(digest[:16], "big") & _V5_CLEAR) | _V5_SET)
    _set(uid, "is_safe", _SAFE_UNKNOWN)
    return uid


def caused_by(cause: Envelope, user_id: str) -> Metadata:
    """Metadata of an effect of ``cause``: same correlation, causation = the cause's id, and
    the trace context of the span handling it (so the effect's readers are its children)."""
    meta = cause.metadata
    extra: dict[str, Any] = dict(meta.model_extra or {})
    return Metadata(
        correlation_id=meta.correlation_id or str(cause.id),
        causation_id=str(cause.id),
        user_id=user_id,
        trace=trace_context() or dict(meta.trace),  # the handler's span when tracing is on
        **extra,
    )
