"""Importers of the public datasets: header variants, encodings, wrappers, bad rows; the
shipped SAMPLE files; loading them into Postgres."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from infra.importers.places_json import read_places
from infra.importers.public_bins import read_bins
from infra.importers.samples import LOCATION_SAMPLES, NEWS_SAMPLE, load_samples, sample_locations
from infra.importers.tabular import ImportReport, find_records
from readmodels import locations, news


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8-sig") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


STANDARD = (
    "설치장소명,소재지도로명주소,소재지지번주소,위도,경도,설치위치상세,수거품목,관리기관명,"
    "관리기관전화번호,데이터기준일자,제공기관코드,제공기관명\r\n"
    "역삼1동주민센터,서울특별시 강남구 테헤란로 1,서울특별시 강남구 역삼동 1-1,37.4995,127.0365,"
    "1층 출입구 옆,폐건전지,서울특별시 강남구,02-000-0000,2024-05-31,3220000,서울특별시 강남구\r\n"
    "좌표없는곳,서울특별시 강남구 논현로 2,,,,,\"폐건전지, 폐형광등\",서울특별시 강남구,,2024-05-31,,\r\n"
    "반대로적힌곳,서울특별시 강남구 논현로 3,,127.0301,37.5102,,\"폐형광등, 폐건전지\",,,20240531,,\r\n"
    "\r\n"
)


def test_standard_battery_lamp_csv(tmp_path: Path) -> None:
    report = ImportReport("battery_lamp_bins")
    rows = list(read_bins(write(tmp_path, "bins.csv", STANDARD), "battery_lamp", report))
    assert report.read == 3 and dict(report.skipped) == {"no coordinates": 1}
    first, swapped = rows
    assert first.name == "역삼1동주민센터"
    assert first.road_address == "서울특별시 강남구 테헤란로 1"
    assert first.lot_address == "서울특별시 강남구 역삼동 1-1"
    assert (first.latitude, first.longitude) == (37.4995, 127.0365)
    assert first.pickup_categories == ("전지",)  # only batteries at this bin
    assert first.detail == "1층 출입구 옆"
    assert first.agency == "서울특별시 강남구" and first.phone == "02-000-0000"
    assert first.reference_date is not None and first.reference_date.isoformat() == "2024-05-31"
    assert first.store_category == "collection_bin" and first.source == "battery_lamp_bins"
    # swapped 위도/경도 columns are put right; both items named in text order
    assert (swapped.latitude, swapped.longitude) == (37.5102, 127.0301)
    assert swapped.pickup_categories == ("조명제품", "전지")
    assert swapped.reference_date is not None


def test_variant_headers_in_cp949_and_api_field_names(tmp_path: Path) -> None:
    variant = (
        "연번,관리번호,설치장소,도로명주소,지번주소,위도,경도,관리기관,전화번호,데이터기준일자\n"
        "1,CL-1,망원1동 경로당 앞,서울특별시 마포구 월드컵로 10,,37.556,126.905,서울특별시 마포구,,2024.01.02\n"
    )
    report = ImportReport("clothing_bins")
    (row,) = read_bins(write(tmp_path, "c.csv", variant, "cp949"), "clothing", report)
    assert row.name == "망원1동 경로당 앞" and row.source_key == "CL-1"
    assert row.pickup_categories == ("의류및원단",)
    assert row.reference_date is not None and row.reference_date.month == 1

    api = (
        "instlPlcNm\trdnmadr\tlnmadr\tlatitude\tlongitude\tinstitutionNm\treferenceDate\n"
        "노원구보건소\t서울특별시 노원구 노해로 437\t\t37.654\t127.056\t서울특별시 노원구\t2024-03-01\n"
    )
    (med,) = read_bins(write(tmp_path, "m.tsv", api), "medicine", ImportReport("m"))
    assert med.name == "노원구보건소" and med.pickup_categories == ("폐의약품",)
    assert med.road_address == "서울특별시 노원구 노해로 437"


def test_rows_without_a_name_get_the_dataset_default_and_keys_are_stable(tmp_path: Path) -> None:
    text = "소재지도로명주소,위도,경도\n서울특별시 중구 세종대로 110,37.5663,126.9779\n"
    path = write(tmp_path, "x.csv", text)
    (a,) = read_bins(path, "clothing", ImportReport("x"))
    (b,) = read_bins(path, "clothing", ImportReport("x"))
    assert a.name == "의류수거함"
    assert a.source_key == b.source_key  # re-importing the same row updates it in place


def test_json_wrappers_are_found() -> None:
    rows = [{"상호명": "a"}]
    assert find_records(rows) == rows
    assert find_records({"currentCount": 1, "data": rows}) == rows
    assert find_records({"response": {"header": {}, "body": {"items": {"item": rows}}}}) == rows
    assert find_records({"SeoulZeroWaste": {"list_total_count": 1, "row": rows}}) == rows
    assert find_records({"nothing": 1}) == []


def test_zero_waste_json(tmp_path: Path) -> None:
    doc = {"response": {"body": {"items": {"item": [
        {"name": "리필상점", "address": "서울특별시 마포구 양화로 1", "lat": "37.55",
         "lng": "126.92", "hours": "10:00 - 19:30", "accepts": "종이팩, 병뚜껑",
         "homepage": "https://shop.example"},
        {"상호명": "좌표없음", "주소": "서울"},
        {"위도": 37.5, "경도": 127.0},
    ]}}}}
    path = tmp_path / "shops.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    report = ImportReport("zero_waste_shops")
    (shop,) = read_places(path, "zero_waste", report)
    assert dict(report.skipped) == {"no coordinates": 1, "no name": 1}
    assert shop.store_category == "zero_waste_shop"
    assert (shop.start_time, shop.end_time) == ("10:00", "19:30")
    assert shop.pickup_categories == ("종이팩", "플라스틱류")
    assert shop.place_url == "https://shop.example"
    with pytest.raises(ValueError):
        list(read_places(path, "nonsense", report))


def test_the_samples_are_seoul_and_labelled() -> None:
    records, reports = sample_locations()
    assert len(records) >= 400
    assert all(r.sample for r in records)
    assert all(37.40 < r.latitude < 37.72 and 126.75 < r.longitude < 127.20 for r in records)
    assert {r.store_category for r in records} == {
        "collection_bin", "zero_waste_shop", "recycling_center"}
    assert all(sum(r.skipped.values()) == 0 for r in reports)
    for path in (*LOCATION_SAMPLES.values(), NEWS_SAMPLE):
        assert path.name.startswith("sample_")
    assert "SAMPLE" in (NEWS_SAMPLE.parent / "README.md").read_text(encoding="utf-8")
    assert "SAMPLE" in (LOCATION_SAMPLES["clothing"].parent / "README.md").read_text(
        encoding="utf-8")


@pytest.mark.postgres
async def test_load_samples_once(pool: asyncpg.Pool) -> None:
    loaded = await load_samples(pool)
    assert not loaded.skipped
    total = await locations.count_locations(pool)
    assert total >= 400
    page = await news.list_news(pool, limit=50)
    assert len(page.articles) >= 30 and all(a.sample for a in page.articles)
    assert (await load_samples(pool)).skipped  # only_if_empty: nothing happens
    await load_samples(pool, only_if_empty=False)
    assert await locations.count_locations(pool) == total  # same keys: updated, not duplicated
    found = await locations.nearest(pool, 37.5665, 126.9780, 5000, "폐건전지", 20)
    assert len(found) == 20 and all(c.sample for c in found)
