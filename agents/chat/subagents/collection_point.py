"""``collection_point``: the nearest bins for batteries, lamps, clothing, medicine, clear PET."""

from __future__ import annotations

from agents.chat.korean import copula, distance_text
from agents.chat.subagents.base import Finding, SubTask, not_found
from agents.chat.subagents.places import (
    CATEGORY_LABELS,
    LocationsPort,
    describe_places,
    detect_categories,
    nearest_of,
    place_source,
)

STAGE = "collection_point"
RADIUS_M = 3000
LIMIT = 5

CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("battery", ("건전지", "배터리", "충전지", "전지")),
    ("lamp", ("형광등", "전구", "램프", "led등")),
    ("clothing", ("의류", "옷", "헌옷", "신발", "가방", "이불")),
    ("medicine", ("의약품", "약국", "알약", "물약", "안약", "연고", "남은약", "감기약")),
    ("pet", ("페트", "pet", "생수병", "캔", "무인회수기", "네프론")),
)


def categories_for(task: SubTask) -> list[str]:
    """Bin kinds the task asks about: its own words, else the whole message, else the image."""
    for text in (task.query, task.message, task.item_hint or ""):
        found = detect_categories(text, CUES)
        if found:
            return found
    return []


async def run(task: SubTask, locations: LocationsPort) -> Finding:
    """Nearest bins of the kinds asked for (any bin when none is named)."""
    if task.location is None:
        return not_found(STAGE, reason="no_location")
    categories = categories_for(task)
    wanted: list[str | None] = list(categories) or [None]
    places = await nearest_of(
        locations,
        task.location.latitude,
        task.location.longitude,
        radius_m=RADIUS_M,
        categories=wanted,
        limit=LIMIT,
    )
    if not categories:
        places = [p for p in places if p.pickup_categories]
    detail = {"categories": categories, "count": len(places), "radius_m": RADIUS_M}
    if not places:
        return not_found(STAGE, **detail)
    label = "·".join(CATEGORY_LABELS[c] for c in categories) if categories else "수거함"
    text = (
        f"현재 위치에서 가까운 {copula(label)} (가까운 순, {distance_text(RADIUS_M)} 이내):\n"
        + describe_places(places, limit=LIMIT)
    )
    return Finding(
        stage=STAGE,
        found=True,
        title=f"가까운 {label}",
        text=text,
        sources=[place_source(p) for p in places],
        detail=detail,
    )
