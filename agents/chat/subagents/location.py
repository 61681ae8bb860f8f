"""``location``: recycling centres, zero-waste shops and refill stations near the user."""

from __future__ import annotations

from agents.chat.korean import copula, distance_text
from agents.chat.subagents.base import Finding, SubTask, not_found
from agents.chat.subagents.places import (
    CATEGORY_LABELS,
    STORE_CATEGORIES,
    LocationsPort,
    describe_places,
    detect_categories,
    nearest_of,
    place_source,
)

STAGE = "location"
RADIUS_M = 5000
LIMIT = 5

CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "zero_waste_shop",
        ("제로웨이스트", "제로웨이스트샵", "zerowaste", "친환경가게", "친환경샵", "샵"),
    ),
    ("refill_station", ("리필",)),
    ("recycling_center", ("재활용센터", "자원순환", "선별장", "중고", "재활용가게", "재사용")),
)


async def run(task: SubTask, locations: LocationsPort) -> Finding:
    """Nearest stores of the kind asked for (any kind when the question does not say)."""
    if task.location is None:
        # The graph asks for the location before routing here; without one there is nothing.
        return not_found(STAGE, reason="no_location")
    categories = detect_categories(task.query, CUES) or detect_categories(task.message, CUES)
    wanted: list[str | None] = list(categories or STORE_CATEGORIES)
    places = await nearest_of(
        locations,
        task.location.latitude,
        task.location.longitude,
        radius_m=RADIUS_M,
        categories=wanted,
        limit=LIMIT,
    )
    detail = {"categories": wanted, "count": len(places), "radius_m": RADIUS_M}
    if not places:
        return not_found(STAGE, **detail)
    label = "·".join(CATEGORY_LABELS[c] for c in categories) if categories else "자원순환 관련 장소"
    text = (
        f"현재 위치에서 {distance_text(RADIUS_M)} 안의 가까운 {copula(label)} (가까운 순):\n"
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
