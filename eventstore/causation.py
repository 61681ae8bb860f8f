"""Where an effect comes from: its deterministic id and the metadata linking it to its cause.

Handlers derive the ids of the events they append from their cause (``effect_id``), so a
redelivered message re-appends nothing (the store drops events whose ids it already holds), and
every effect carries its cause's correlation, causation and trace (``caused_by``).
"""

from __future__ import annotations

import uuid
from typing import Any

from eventstore.tracing import trace_context
from schemas.envelope import Envelope, Metadata

# uuid5 namespace of every id a handler derives; changing it would re-run old jobs' effects.
EFFECT_NAMESPACE = uuid.UUID("6f1d8a52-3c0e-5b7a-9d4e-2a8c1b7e5f30")


def effect_id(*parts: str) -> uuid.UUID:
    """A deterministic event id for one effect, e.g. ``effect_id(job_id, "vision")``.

    The same cause and step always give the same id, so a redelivered message re-appends
    nothing.
    """
    return uuid.uuid5(EFFECT_NAMESPACE, "\x1f".join(parts))


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
