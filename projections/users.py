"""The ``users`` read model: profile fields, last login, and points (10 per completed scan).

Profile events come from the user's aggregate (one shard, in order); points come from scan jobs
on any shard, so they only ever *add* to separate counter columns, and the row converges to the
same state whatever order the shards are projected in.
"""

from __future__ import annotations

from projections.changes import Changes
from projections.projection import Projection, event_time
from readmodels import tables
from schemas.envelope import EnvelopeView
from schemas.scan import ScanCompleted
from schemas.users import ProfileUpdated, UserDeleted, UserLoggedIn, UserRegistered

USERS = Projection("users", 1, tables.USERS, shared=frozenset({"users"}))

POINTS_PER_SCAN = 10


@USERS.on(UserRegistered)
def _registered(changes: Changes, event: UserRegistered, envelope: EnvelopeView) -> None:
    changes.set(
        "users",
        envelope.aggregate_id,
        username=event.username,
        nickname=event.nickname,
        provider=event.provider,
        registered_at=event_time(envelope),
    )


@USERS.on(UserLoggedIn)
def _logged_in(changes: Changes, event: UserLoggedIn, envelope: EnvelopeView) -> None:
    changes.set(
        "users", envelope.aggregate_id, provider=event.provider, last_login_at=event_time(envelope)
    )


@USERS.on(ProfileUpdated)
def _profile(changes: Changes, event: ProfileUpdated, envelope: EnvelopeView) -> None:
    values = {
        name: value
        for name, value in (("nickname", event.nickname), ("phone_number", event.phone_number))
        if value is not None
    }
    if values:
        changes.set("users", envelope.aggregate_id, **values)


@USERS.on(UserDeleted)
def _deleted(changes: Changes, event: UserDeleted, envelope: EnvelopeView) -> None:
    # Anonymised, not removed: the row keeps only the id, counters and the deletion time.
    changes.set(
        "users",
        envelope.aggregate_id,
        username=None,
        nickname=None,
        phone_number=None,
        deleted=True,
        deleted_at=event_time(envelope),
    )


@USERS.on(ScanCompleted)
def _scan_completed(changes: Changes, event: ScanCompleted, envelope: EnvelopeView) -> None:
    changes.add("users", event.user_id, completed_scans=1, points=POINTS_PER_SCAN)
