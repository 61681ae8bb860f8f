"""Places near the user: recycling centres and shops (``location``) and collection bins
(``collection_point``), behind ``LocationsPort``.

Adapters: ``InMemoryLocations`` (the shipped sample ``agents/data/locations_sample.csv``, or
any list of places — the twin of the Postgres read model) and ``KakaoLocalLocations`` (Kakao
Local keyword search, ``GET /v2/local/search/keyword.json`` sorted by distance).

Categories: stores ``zero_waste_shop``, ``recycling_center``, ``refill_station``; bins
``battery``, ``lamp``, ``clothing``, ``medicine``, ``pet`` (clear PET bottles and cans,
including reverse vending machines). ``category=None`` means any place.
"""

from __future__ import annotations

import asyncio
import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agents.chat.errors import SourceBadData
from agents.chat.http import HttpSource, as_dict, as_list
from agents.chat.korean import distance_text

STORE_CATEGORIES = ("zero_waste_shop", "recycling_center", "refill_station")
PICKUP_CATEGORIES = ("battery", "lamp", "clothing", "medicine", "pet")
CATEGORY_LABELS = {
    "zero_waste_shop": "제로웨이스트샵",
    "recycling_center": "재활용센터",
    "refill_station": "리필스테이션",
    "battery": "폐건전지 수거함",
    "lamp": "폐형광등 수거함",
    "clothing": "의류수거함",
    "medicine": "폐의약품 수거함",
    "pet": "투명페트병·캔 수거함",
}
SAMPLE_MARK = "(샘플)"
SAMPLE_NOTE = (
    "(샘플) 표시된 곳은 실제 장소가 아닌 예시 데이터예요. 실제 위치는 구청·주민센터 안내나 "
    "지도 앱에서 확인해 주세요."
)
SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "locations_sample.csv"
EARTH_RADIUS_M = 6_371_000.0


class Place(BaseModel):
    """A place as ``GET /locations/centers`` shows it; ``distance_m`` is set by ``nearest``."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    source: str
    road_address: str = ""
    latitude: float
    longitude: float
    store_category: str | None = None
    pickup_categories: list[str] = Field(default_factory=list)
    phone: str | None = None
    place_url: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    distance_m: float | None = None
    sample: bool = False  # from shipped sample data: never a real place

    def has_category(self, category: str | None) -> bool:
        return (
            category is None
            or category == self.store_category
            or category in self.pickup_categories
        )


class LocationsPort(Protocol):
    async def nearest(
        self, lat: float, lon: float, radius_m: int, category: str | None, limit: int
    ) -> list[Place]:
        """Places of ``category`` (None: any) within ``radius_m`` of the point, nearest first,
        at most ``limit``, each with ``distance_m``."""
        ...


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


class InMemoryLocations:
    """``LocationsPort`` over a list of places (the sample file by default)."""

    def __init__(self, places: Iterable[Place]) -> None:
        self.places = list(places)

    @classmethod
    def from_sample(cls, path: Path = SAMPLE_PATH) -> InMemoryLocations:
        """The shipped sample (a few dozen clearly labelled sample places in Seoul and Busan)."""
        return cls(load_places_csv(path))

    async def nearest(
        self, lat: float, lon: float, radius_m: int, category: str | None, limit: int
    ) -> list[Place]:
        """See ``LocationsPort.nearest``."""
        found = []
        for place in self.places:
            if not place.has_category(category):
                continue
            distance = haversine_m(lat, lon, place.latitude, place.longitude)
            if distance <= radius_m:
                found.append(place.model_copy(update={"distance_m": round(distance, 1)}))
        found.sort(key=lambda p: (p.distance_m, p.id))
        return found[: max(limit, 0)]


def load_places_csv(path: Path) -> list[Place]:
    """Places from our sample format: ``id,name,kind,categories,road_address,latitude,longitude,
    phone,place_url,start_time,end_time`` (``kind`` store|pickup, ``categories`` ;-separated)."""
    places = []
    with path.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                categories = [c.strip() for c in row["categories"].split(";") if c.strip()]
                store = row["kind"].strip() == "store"
                places.append(
                    Place(
                        id=row["id"],
                        name=row["name"],
                        source="sample",
                        sample=True,
                        road_address=row.get("road_address") or "",
                        latitude=float(row["latitude"]),
                        longitude=float(row["longitude"]),
                        store_category=categories[0] if store and categories else None,
                        pickup_categories=categories if not store else categories[1:],
                        phone=row.get("phone") or None,
                        place_url=row.get("place_url") or None,
                        start_time=row.get("start_time") or None,
                        end_time=row.get("end_time") or None,
                    )
                )
            except (KeyError, ValueError) as exc:
                raise ValueError(f"{path}:{n}: bad place row: {exc}") from exc
    return places


# What to type into Kakao's keyword search for each category.
KAKAO_QUERIES = {
    "zero_waste_shop": "제로웨이스트샵",
    "recycling_center": "재활용센터",
    "refill_station": "리필스테이션",
    "battery": "폐건전지 수거함",
    "lamp": "폐형광등 수거함",
    "clothing": "의류수거함",
    "medicine": "폐의약품 수거함",
    "pet": "투명페트병 무인회수기",
}
KAKAO_MAX_RADIUS_M = 20_000
KAKAO_MAX_SIZE = 15


class KakaoLocalLocations(HttpSource):
    """``LocationsPort`` on Kakao Local keyword search (REST key in ``Authorization: KakaoAK``)."""

    name = "kakao-local"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://dapi.kakao.com",
        timeout_s: float = 3.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            base_url,
            timeout_s=timeout_s,
            headers={"Authorization": f"KakaoAK {api_key}"},
            transport=transport,
        )

    async def nearest(
        self, lat: float, lon: float, radius_m: int, category: str | None, limit: int
    ) -> list[Place]:
        """See ``LocationsPort.nearest``; Kakao caps the radius at 20 km and 15 results."""
        body = await self.get_json(
            "/v2/local/search/keyword.json",
            {
                "query": KAKAO_QUERIES.get(category or "recycling_center", "재활용센터"),
                "x": f"{lon:.6f}",
                "y": f"{lat:.6f}",
                "radius": min(max(int(radius_m), 0), KAKAO_MAX_RADIUS_M),
                "sort": "distance",
                "size": min(max(limit, 1), KAKAO_MAX_SIZE),
            },
        )
        documents = as_list(as_dict(body, "kakao reply").get("documents"), "kakao documents")
        places = [_kakao_place(as_dict(d, "kakao document"), category, lat, lon) for d in documents]
        places.sort(key=lambda p: p.distance_m if p.distance_m is not None else math.inf)
        return [p for p in places if (p.distance_m or 0) <= radius_m][:limit]


def _kakao_place(doc: dict[str, Any], category: str | None, lat: float, lon: float) -> Place:
    try:
        y, x = float(doc["y"]), float(doc["x"])  # Kakao sends coordinates as strings
        distance = float(doc["distance"]) if doc.get("distance") else haversine_m(lat, lon, y, x)
        store = category in STORE_CATEGORIES
        return Place(
            id=f"kakao:{doc['id']}",
            name=str(doc["place_name"]),
            source="kakao",
            road_address=str(doc.get("road_address_name") or doc.get("address_name") or ""),
            latitude=y,
            longitude=x,
            store_category=category if store else None,
            pickup_categories=[category] if category and not store else [],
            phone=str(doc.get("phone") or "") or None,
            place_url=str(doc.get("place_url") or "") or None,
            distance_m=distance,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceBadData(f"kakao-local: unreadable document: {exc}") from exc


def describe_places(places: Sequence[Place], *, limit: int = 5) -> str:
    """Numbered lines "1. name — 약 120m · address · 09:00~18:00"."""
    lines = []
    for n, place in enumerate(places[:limit], start=1):
        extra = []
        if place.distance_m is not None:
            extra.append(f"약 {distance_text(place.distance_m)}")
        if place.road_address:
            extra.append(place.road_address)
        if place.start_time and place.end_time:
            extra.append(f"{place.start_time}~{place.end_time}")
        if place.phone:
            extra.append(place.phone)
        name = place.name
        if place.sample and SAMPLE_MARK not in name:
            name = f"{name} {SAMPLE_MARK}"
        lines.append(f"{n}. {name}" + (" — " + " · ".join(extra) if extra else ""))
    if any(p.sample for p in places[:limit]):
        lines.append(SAMPLE_NOTE)
    return "\n".join(lines)


def place_source(place: Place) -> dict[str, Any]:
    """The ``sources`` entry of a place."""
    return {
        "type": "place",
        "id": place.id,
        "name": place.name,
        "source": place.source,
        "distance_m": place.distance_m,
        "latitude": place.latitude,
        "longitude": place.longitude,
        "sample": place.sample,
    }


def detect_categories(text: str, cues: Sequence[tuple[str, tuple[str, ...]]]) -> list[str]:
    """Categories whose cue words occur in ``text`` (lower-cased, spaces ignored), in table order."""
    key = "".join(text.lower().split())
    return [category for category, words in cues if any(w in key for w in words)]


async def nearest_of(
    port: LocationsPort,
    lat: float,
    lon: float,
    *,
    radius_m: int,
    categories: Sequence[str | None],
    limit: int,
) -> list[Place]:
    """Nearest places over several categories (one port call each), merged nearest first."""
    batches = await asyncio.gather(
        *(port.nearest(lat, lon, radius_m, category, limit) for category in categories)
    )
    merged: dict[str, Place] = {}
    for batch in batches:
        for place in batch:
            merged.setdefault(place.id, place)
    ordered = sorted(merged.values(), key=lambda p: (p.distance_m or 0.0, p.id))
    return ordered[:limit]
