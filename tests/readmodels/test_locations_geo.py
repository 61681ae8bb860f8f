"""Distances, bounding boxes, opening hours and category names (no database)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from readmodels.locations_categories import (
    normalize_pickup_category,
    normalize_store_category,
    pickup_categories_in,
)
from readmodels.locations_geo import (
    KST,
    box_around,
    distance_text,
    haversine_m,
    is_open_at,
    parse_hhmm,
)

CITY_HALL = (37.5665, 126.9780)
GANGNAM_STATION = (37.4979, 127.0276)


def test_haversine_matches_a_known_distance() -> None:
    # Seoul City Hall → Gangnam Station is about 8.8 km as the crow flies
    assert 8_600 < haversine_m(*CITY_HALL, *GANGNAM_STATION) < 9_000
    assert haversine_m(*CITY_HALL, *CITY_HALL) == 0


@settings(max_examples=300, deadline=None)
@given(
    lat=st.floats(-80, 80), lon=st.floats(-170, 170), radius=st.floats(100, 50_000),
    bearing=st.floats(0, 2 * math.pi), fraction=st.floats(0, 0.999),
)
def test_every_point_within_the_radius_lies_in_the_box(
    lat: float, lon: float, radius: float, bearing: float, fraction: float
) -> None:
    # walk `fraction * radius` metres from the centre in direction `bearing` (spherical)
    d = radius * fraction / 6_371_008.8
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(math.sin(bearing) * math.sin(d) * math.cos(p1),
                         math.cos(d) - math.sin(p1) * math.sin(p2))
    plat, plon = math.degrees(p2), math.degrees(l2)
    box = box_around(lat, lon, radius)
    assert box.min_lat <= plat <= box.max_lat
    assert box.min_lon <= plon <= box.max_lon
    assert math.floor(plat * 100) in box.bands()


def test_box_near_the_pole_spans_every_longitude() -> None:
    box = box_around(89.9, 10.0, 50_000)
    assert (box.min_lon, box.max_lon) == (-180.0, 180.0)
    assert box.max_lat == 90.0


@pytest.mark.parametrize(
    ("meters", "text"), [(0, "0m"), (349.6, "350m"), (999, "999m"), (1_234, "1.2km"),
                         (9_949, "9.9km"), (12_345, "12km")],
)
def test_distance_text(meters: float, text: str) -> None:
    assert distance_text(meters) == text


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 5, 1, hour, minute, tzinfo=KST)


def test_opening_hours() -> None:
    assert is_open_at("10:00", "19:00", at(10)) is True
    assert is_open_at("10:00", "19:00", at(19)) is False
    assert is_open_at("10:00", "19:00", at(9, 59)) is False
    assert is_open_at("18:00", "02:00", at(1)) is True  # past midnight
    assert is_open_at("18:00", "02:00", at(12)) is False
    assert is_open_at("00:00", "24:00", at(23, 59)) is True
    assert is_open_at("09:00", "24:00", at(8)) is False
    assert is_open_at(None, "19:00", at(12)) is None
    assert is_open_at("9시", "19:00", at(12)) is None
    # the time is taken in Korean time whatever zone it arrives in
    assert is_open_at("10:00", "19:00", datetime.fromisoformat("2025-05-01T02:00:00+00:00"))
    assert parse_hhmm("25:00") is None


def test_category_names_are_normalized() -> None:
    assert normalize_pickup_category("폐건전지") == "전지"
    assert normalize_pickup_category("Battery") == "전지"
    assert normalize_pickup_category("형광등") == "조명제품"
    assert normalize_pickup_category("헌옷") == "의류및원단"
    assert normalize_pickup_category("의류및원단") == "의류및원단"
    assert normalize_pickup_category("전체") is None
    assert normalize_pickup_category("somethingelse") == "somethingelse"  # matches nothing
    assert normalize_store_category("제로웨이스트") == "zero_waste_shop"
    assert normalize_store_category("all") is None
    assert normalize_store_category("recycling_center") == "recycling_center"


def test_items_text_names_pickup_categories_in_order() -> None:
    assert pickup_categories_in("폐형광등, 폐건전지") == ("조명제품", "전지")
    assert pickup_categories_in("폐건전지") == ("전지",)
    assert pickup_categories_in("일반 쓰레기") == ()
