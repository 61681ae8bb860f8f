"""The only queries against read models (used by the gateway and analysts' commands).

Every function takes a pool or a connection and reads the stable views (``scans``, ``users``,
…), never a versioned table, so a rebuild's switch is invisible to callers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeAlias

from characters import Character
from readmodels.catalog import DEFAULT_CHARACTER, FALLBACK_CHARACTERS

if TYPE_CHECKING:
    import asyncpg

    from readmodels.db import Conn, Pool

    Executor: TypeAlias = Pool | Conn


@dataclass(frozen=True)
class ScanView:
    job_id: str
    user_id: str
    status: str  # queued | processing | completed | failed
    stage: str
    progress: int
    classification: dict[str, Any] | None  # {"classification": {...}, "situation_tags": [...]}
    disposal_rules: dict[str, Any] | None
    rule_found: bool | None
    answer: dict[str, Any] | None  # ScanAnswer fields
    reward: dict[str, Any] | None  # Reward fields, None when no character was earned
    error: dict[str, Any] | None  # {"stage", "message", "code"} when failed
    version: int  # the job aggregate's version this row reflects
    created_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


@dataclass(frozen=True)
class UserView:
    user_id: str
    username: str | None
    nickname: str | None
    phone_number: str | None
    provider: str | None
    registered_at: datetime | None
    last_login_at: datetime | None
    completed_scans: int
    points: int  # 10 per completed scan
    deleted: bool  # personal fields are None after deletion


@dataclass(frozen=True)
class OwnedCharacter:
    """A character as one user owns it: the catalog fields plus when it was acquired."""

    code: str
    name: str
    type: str
    dialog: str
    acquired_at: datetime | None


@dataclass(frozen=True)
class DailyScanCount:
    day: date  # Korea Standard Time
    middle_category: str
    count: int


@dataclass(frozen=True)
class RewardCount:
    character_code: str
    name: str | None
    count: int


def _json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


async def get_scan(db: Executor, job_id: str, user_id: str) -> ScanView | None:
    """The scan job ``job_id`` if it belongs to ``user_id`` (else None: same as unknown)."""
    row = await db.fetchrow(
        "SELECT * FROM scans WHERE job_id = $1 AND user_id = $2", job_id, user_id
    )
    if row is None:
        return None
    fields = dict(row)
    for name in ("classification", "disposal_rules", "answer", "reward", "error"):
        fields[name] = _json(fields[name])
    for name in ("image_url", "user_input"):
        fields.pop(name)
    return ScanView(**fields)


async def get_user(db: Executor, user_id: str) -> UserView | None:
    """The user's profile and points; None for an unknown user. Deleted users come back with
    ``deleted=True`` and no personal fields."""
    row = await db.fetchrow("SELECT * FROM users WHERE user_id = $1", user_id)
    if row is None:
        return None
    fields = dict(row)
    fields.pop("deleted_at")
    return UserView(**fields)


async def catalog(db: Executor) -> list[Character]:
    """All characters, default first, in catalog order."""
    rows = await db.fetch(
        "SELECT code, name, type, dialog, match_label, is_default FROM character_catalog"
        " ORDER BY sort_order, code"
    )
    return [Character(**dict(r)) for r in rows]


async def _default_character(db: Executor) -> Character:
    row = await db.fetchrow(
        "SELECT code, name, type, dialog, match_label, is_default FROM character_catalog"
        " WHERE is_default ORDER BY sort_order LIMIT 1"
    )
    if row is not None:
        return Character(**dict(row))
    return next(c for c in FALLBACK_CHARACTERS if c.name == DEFAULT_CHARACTER)


async def list_characters(db: Executor, user_id: str) -> list[OwnedCharacter]:
    """Characters the user owns, oldest first. Every user owns the default character (이코)
    from the start, so it is always listed (first), acquired at registration."""
    rows = await db.fetch(
        "SELECT o.character_code AS code, o.name, coalesce(c.type, '') AS type,"
        " coalesce(c.dialog, '') AS dialog, o.acquired_at"
        " FROM character_ownership o LEFT JOIN character_catalog c ON c.code = o.character_code"
        " WHERE o.user_id = $1 ORDER BY o.acquired_at, o.character_code",
        user_id,
    )
    owned = [OwnedCharacter(**dict(r)) for r in rows]
    default = await _default_character(db)
    if any(o.code == default.code for o in owned):
        return owned
    registered = await db.fetchval("SELECT registered_at FROM users WHERE user_id = $1", user_id)
    first = OwnedCharacter(default.code, default.name, default.type, default.dialog, registered)
    return [first, *owned]


async def owns_character(db: Executor, user_id: str, name: str) -> bool:
    """True if the user owns the character called ``name`` (always for the default one)."""
    if name == (await _default_character(db)).name:
        return True
    found = await db.fetchval(
        "SELECT 1 FROM character_ownership WHERE user_id = $1 AND name = $2", user_id, name
    )
    return found is not None


async def scans_per_category(
    db: Executor, *, since: date | None = None, until: date | None = None
) -> list[DailyScanCount]:
    """Classified scans per day (KST) and middle category, between ``since`` and ``until``
    inclusive, by day then category."""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT day, middle_category, count FROM stats_scans_daily"
        " WHERE ($1::date IS NULL OR day >= $1) AND ($2::date IS NULL OR day <= $2)"
        " ORDER BY day, middle_category",
        since,
        until,
    )
    return [DailyScanCount(**dict(r)) for r in rows]


async def rewards_per_character(db: Executor) -> list[RewardCount]:
    """How many scans showed each character as their reward, most rewarded first."""
    rows = await db.fetch(
        "SELECT r.character_code, c.name, r.count FROM stats_rewards r"
        " LEFT JOIN character_catalog c ON c.code = r.character_code"
        " ORDER BY r.count DESC, r.character_code"
    )
    return [RewardCount(**dict(r)) for r in rows]


async def applied_position(db: Executor, projection: str, shard: int) -> int:
    """How far the active version of ``projection`` has applied shard ``shard``'s log (0
    before it started): a read model reflects an event iff this is >= the event's position."""
    value = await db.fetchval(
        "SELECT c.position FROM checkpoints c JOIN projections p ON p.name = c.projection"
        " AND c.suffix = 'v' || p.active_version WHERE c.projection = $1 AND c.shard = $2",
        projection,
        shard,
    )
    return 0 if value is None else int(value)
