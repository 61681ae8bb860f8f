"""The three national standard datasets of collection bins (공공데이터포털 표준데이터), CSV:

- 전국폐형광등폐건전지수거함표준데이터 (batteries and fluorescent lamps),
- 전국의류수거함표준데이터 (clothing),
- 전국폐의약품수거함표준데이터 (household medicine).

They share the standard-data layout: 설치장소명, 소재지도로명주소, 소재지지번주소, 위도, 경도,
관리기관명, 관리기관전화번호, 데이터기준일자, … . Releases and municipal re-publications
spell headers differently (spaces, '설치장소' vs '설치장소명', the API's English field names
such as ``rdnmadr``/``latitude``), so each logical column lists its known spellings.
Rows without usable coordinates are skipped and counted (geocoding would need the network).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from infra.importers.tabular import (
    Field,
    ImportReport,
    korean_coordinates,
    parse_date,
    pick,
    read_csv_rows,
    stable_key,
)
from readmodels.locations_categories import (
    BATTERY,
    CLOTHING,
    COLLECTION_BIN,
    LAMP,
    MEDICINE,
    pickup_categories_in,
)
from readmodels.locations_store import LocationRecord

NAME = Field("name", (
    "설치장소명", "설치장소", "설치장소 명칭", "수거함명", "수거함 설치장소명", "수거장소명",
    "수거장소", "장소명", "시설명", "명칭", "instlPlcNm", "instl_plc_nm", "name",
))
ROAD = Field("road_address", (
    "소재지도로명주소", "도로명주소", "설치장소도로명주소", "소재지 도로명 주소", "주소(도로명)",
    "rdnmadr", "road_address",
))
LOT = Field("lot_address", (
    "소재지지번주소", "지번주소", "설치장소지번주소", "주소(지번)", "lnmadr", "lot_address",
))
ADDRESS = Field("address", ("주소", "소재지", "설치주소", "소재지주소", "address", "addr"))
LAT = Field("latitude", ("위도", "위도(WGS84)", "latitude", "lat", "y"))
LON = Field("longitude", ("경도", "경도(WGS84)", "longitude", "lon", "lng", "x"))
DETAIL = Field("detail", (
    "설치위치상세", "상세위치", "상세설치위치", "설치위치", "세부위치", "설치장소상세", "비고",
))
ITEMS = Field("items", (
    "수거품목", "수거대상품목", "수거품목구분", "수거함구분", "수거함종류", "수거대상", "품목",
))
PHONE = Field("phone", (
    "관리기관전화번호", "관리기관 전화번호", "전화번호", "연락처", "phoneNumber", "phone", "tel",
))
AGENCY = Field("agency", ("관리기관명", "관리기관", "관리부서", "관리주체", "institutionNm"))
REFERENCE_DATE = Field("reference_date", ("데이터기준일자", "기준일자", "referenceDate"))
KEY = Field("key", ("관리번호", "수거함번호", "고유번호", "mngNo"))
SIDO = Field("sido", ("시도명", "ctprvnNm"))
SIGUNGU = Field("sigungu", ("시군구명", "signguNm"))


@dataclass(frozen=True)
class BinDataset:
    """One of the standard datasets: its CLI name, source key and defaults."""

    kind: str
    source: str
    title: str
    default_pickup: tuple[str, ...]
    unnamed: str  # the name shown when a row has none


BIN_DATASETS: dict[str, BinDataset] = {
    d.kind: d
    for d in (
        BinDataset("battery_lamp", "battery_lamp_bins", "전국폐형광등폐건전지수거함표준데이터",
                   (BATTERY, LAMP), "폐건전지·폐형광등 수거함"),
        BinDataset("clothing", "clothing_bins", "전국의류수거함표준데이터",
                   (CLOTHING,), "의류수거함"),
        BinDataset("medicine", "medicine_bins", "전국폐의약품수거함표준데이터",
                   (MEDICINE,), "폐의약품 수거함"),
    )
}


def bin_record(
    row: Mapping[str, str], dataset: BinDataset, *, sample: bool = False
) -> LocationRecord | str:
    """The record of one CSV row, or the reason it cannot be one."""
    coords = korean_coordinates(pick(row, LAT), pick(row, LON))
    if coords is None:
        return "no coordinates"
    road = pick(row, ROAD)
    lot = pick(row, LOT)
    if road is None and lot is None:
        road = pick(row, ADDRESS)
        if road is None and (pick(row, SIDO) or pick(row, SIGUNGU)):
            road = " ".join(p for p in (pick(row, SIDO), pick(row, SIGUNGU)) if p)
    detail = pick(row, DETAIL)
    name = pick(row, NAME) or detail or dataset.unnamed
    items = pick(row, ITEMS)
    pickup = pickup_categories_in(items) if items else ()
    # The battery/lamp dataset lists bins that take only one of the two; others take both.
    pickup = pickup or dataset.default_pickup
    lat, lon = coords
    key = pick(row, KEY) or stable_key(name, road or lot or "", round(lat, 6), round(lon, 6))
    return LocationRecord(
        source=dataset.source,
        source_key=key,
        name=name,
        latitude=lat,
        longitude=lon,
        store_category=COLLECTION_BIN,
        pickup_categories=pickup,
        road_address=road,
        lot_address=lot,
        detail=detail if detail != name else None,
        phone=pick(row, PHONE),
        agency=pick(row, AGENCY),
        reference_date=parse_date(pick(row, REFERENCE_DATE)),
        sample=sample,
    )


def read_bins(
    path: Path, kind: str, report: ImportReport, *, sample: bool = False
) -> Iterator[LocationRecord]:
    """The records of a standard-dataset CSV file; ``report`` counts reads and skips."""
    dataset = BIN_DATASETS[kind]
    yield from report.kept(bin_record(row, dataset, sample=sample) for row in read_csv_rows(path))
