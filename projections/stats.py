"""Statistics for analysts: classified scans per day and category, rewards per character.

Days are Korean calendar days (KST, UTC+9), taken from the event's own timestamp.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from projections.changes import Changes
from projections.projection import Projection
from readmodels import tables
from schemas.envelope import EnvelopeView
from schemas.scan import RewardCompleted, VisionCompleted

STATS = Projection(
    "stats", 1, tables.STATS, shared=frozenset({"stats_scans_daily", "stats_rewards"})
)

KST = timezone(timedelta(hours=9), "KST")


@STATS.on(VisionCompleted)
def _classified(changes: Changes, event: VisionCompleted, envelope: EnvelopeView) -> None:
    day = datetime.fromtimestamp(envelope.timestamp, KST).date()
    category = event.classification.middle_category or event.classification.major_category
    changes.add("stats_scans_daily", (day, category), count=1)


@STATS.on(RewardCompleted)
def _rewarded(changes: Changes, event: RewardCompleted, envelope: EnvelopeView) -> None:
    if event.reward is not None:
        changes.add("stats_rewards", event.reward.code, count=1)
