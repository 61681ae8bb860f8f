"""Zero-waste shops (제로웨이스트샵) and recycling centres (재활용센터) from JSON exports.

These lists are published by municipalities and NGOs rather than as one standard dataset, so
the reader accepts the usual wrappers (see ``tabular.find_records``) and Korean or English
field names: 상호명/업체명/name, 도로명주소/주소/address, 위도/latitude/lat, 경도/longitude/lng,
전화번호/phone, 운영시간 ('10:00~19:00') or start_time/end_time, 수거품목/pickup_categories
(list or comma text), 홈페이지/place_url.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from infra.importers.tabular import (
    Field,
    ImportReport,
    decode_bytes,
    find_records,
    korean_coordinates,
    normalize_keys,
    parse_date,
    pick,
    stable_key,
)
from readmodels.locations_categories import (
    RECYCLING_CENTER,
    ZERO_WASTE_SHOP,
    normalize_pickup_category,
    normalize_store_category,
    pickup_categories_in,
)
from readmodels.locations_store import LocationRecord

PLACE_KINDS = {
    "zero_waste": ("zero_waste_shops", ZERO_WASTE_SHOP, ("종이팩", "플라스틱류")),
    "recycling_center": ("recycling_centers", RECYCLING_CENTER, ("대형폐기물", "전기전자제품")),
}

NAME = Field("name", ("상호명", "업체명", "매장명", "센터명", "시설명", "명칭", "name", "title",
                      "place_name"))
ROAD = Field("road_address", ("도로명주소", "소재지도로명주소", "road_address", "rdnmadr"))
LOT = Field("lot_address", ("지번주소", "소재지지번주소", "lot_address", "lnmadr"))
ADDRESS = Field("address", ("주소", "소재지", "address", "addr"))
LAT = Field("latitude", ("위도", "latitude", "lat", "y"))
LON = Field("longitude", ("경도", "longitude", "lng", "lon", "x"))
PHONE = Field("phone", ("전화번호", "연락처", "phone", "tel", "telephone"))
HOURS = Field("hours", ("운영시간", "영업시간", "hours", "opening_hours"))
START = Field("start_time", ("시작시간", "운영시작시간", "start_time", "open"))
END = Field("end_time", ("종료시간", "운영종료시간", "end_time", "close"))
URL = Field("place_url", ("place_url", "홈페이지", "홈페이지주소", "url", "homepage", "website"))
KEY = Field("key", ("id", "관리번호", "key"))
CATEGORY = Field("store_category", ("store_category", "구분", "category", "type"))
DETAIL = Field("detail", ("상세위치", "비고", "detail", "description"))
REFERENCE_DATE = Field("reference_date", ("데이터기준일자", "기준일자", "updated_at"))
_ITEM_KEYS = ("수거품목", "수거대상", "취급품목", "pickup_categories", "items", "accepts")

_HOURS = re.compile(r"(\d{1,2}:\d{2})\s*[~\-–]\s*(\d{1,2}:\d{2})")


def _hours(record: Mapping[str, Any]) -> tuple[str | None, str | None]:
    start, end = pick(record, START), pick(record, END)
    if start and end:
        return start, end
    text = pick(record, HOURS)
    match = _HOURS.search(text or "")
    if match is None:
        return None, None
    return _hhmm(match[1]), _hhmm(match[2])


def _hhmm(text: str) -> str:
    hours, _, minutes = text.partition(":")
    return f"{int(hours):02d}:{minutes}"


def _pickup(record: Mapping[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    for key in _ITEM_KEYS:
        value = record.get(key.lower())
        if isinstance(value, list):
            names = [normalize_pickup_category(str(v)) for v in value]
            found = tuple(dict.fromkeys(n for n in names if n))
        elif isinstance(value, str) and value.strip():
            found = pickup_categories_in(value)
        else:
            continue
        if found:
            return found
    return default


def place_record(
    raw: Mapping[str, Any], kind: str, *, sample: bool = False
) -> LocationRecord | str:
    """The record of one JSON object, or the reason it cannot be one."""
    source, default_category, default_pickup = PLACE_KINDS[kind]
    record = normalize_keys(raw)
    name = pick(record, NAME)
    if name is None:
        return "no name"
    coords = korean_coordinates(pick(record, LAT), pick(record, LON))
    if coords is None:
        return "no coordinates"
    road = pick(record, ROAD) or pick(record, ADDRESS)
    category = normalize_store_category(pick(record, CATEGORY)) or default_category
    if category not in (ZERO_WASTE_SHOP, RECYCLING_CENTER):
        category = default_category
    start, end = _hours(record)
    lat, lon = coords
    return LocationRecord(
        source=source,
        source_key=pick(record, KEY) or stable_key(name, road or "", round(lat, 6), round(lon, 6)),
        name=name,
        latitude=lat,
        longitude=lon,
        store_category=category,
        pickup_categories=_pickup(record, default_pickup),
        road_address=road,
        lot_address=pick(record, LOT),
        detail=pick(record, DETAIL),
        phone=pick(record, PHONE),
        place_url=pick(record, URL),
        start_time=start,
        end_time=end,
        reference_date=parse_date(pick(record, REFERENCE_DATE)),
        sample=sample,
    )


def read_places(
    path: Path, kind: str, report: ImportReport, *, sample: bool = False
) -> Iterator[LocationRecord]:
    """The records of a JSON export of zero-waste shops or recycling centres."""
    if kind not in PLACE_KINDS:
        raise ValueError(f"unknown place kind {kind!r}; use one of {', '.join(PLACE_KINDS)}")
    data = json.loads(decode_bytes(path.read_bytes()))
    sample = sample or (isinstance(data, dict) and data.get("sample") is True)
    yield from report.kept(place_record(raw, kind, sample=sample) for raw in find_records(data))
