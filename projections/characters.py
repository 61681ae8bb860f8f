"""The ``character_ownership`` read model: which characters each user owns, once each."""

from __future__ import annotations

from projections.changes import Changes
from projections.projection import Projection, event_time
from readmodels import tables
from schemas.envelope import EnvelopeView
from schemas.users import CharacterGranted

CHARACTERS = Projection("characters", 1, tables.CHARACTERS)


@CHARACTERS.on(CharacterGranted)
def _granted(changes: Changes, event: CharacterGranted, envelope: EnvelopeView) -> None:
    changes.insert_once(
        "character_ownership",
        (envelope.aggregate_id, event.character_code),
        name=event.character_name,
        source_job_id=event.source_job_id,
        acquired_at=event_time(envelope),
    )
