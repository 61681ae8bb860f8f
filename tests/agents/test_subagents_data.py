"""Importers of the public-data formats and the shipped samples (strings → numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.chat.subagents.bulk_waste_data import (
    SAMPLE_PATH as FEES_SAMPLE,
)
from agents.chat.subagents.bulk_waste_data import (
    InMemoryBulkWasteFees,
    load_fees_csv,
    parse_fee_row,
)
from agents.chat.subagents.places import SAMPLE_PATH as PLACES_SAMPLE
from agents.chat.subagents.places import InMemoryLocations, load_places_csv
from agents.chat.subagents.recyclable_price_data import (
    CATEGORIES,
    REGIONS,
    InMemoryRecyclablePrices,
    load_prices_csv,
    parse_price_row,
    previous_month,
)
from agents.chat.subagents.recyclable_price_data import (
    SAMPLE_PATH as PRICES_SAMPLE,
)


def test_samples_are_labelled_as_samples() -> None:
    readme = (FEES_SAMPLE.parent / "README.md").read_text(encoding="utf-8")
    assert "SAMPLES" in readme
    for path in (FEES_SAMPLE, PRICES_SAMPLE, PLACES_SAMPLE):
        assert path.name.endswith("_sample.csv") and path.name in readme


def test_fee_sample_parses_strings_into_numbers() -> None:
    fees = load_fees_csv(FEES_SAMPLE, source="sample")
    assert len(fees) >= 30
    sofa = [f for f in fees if f.district == "강남구" and f.item == "소파"]
    assert [(f.spec, f.fee, f.paid) for f in sofa] == [
        ("1인용", 5000, True),
        ("2인용", 8000, True),
        ("3인용 이상", 12000, True),
    ]
    quoted = next(f for f in fees if f.district == "수원시" and f.item == "매트리스")
    assert quoted.fee == 10000  # "10,000" in the file
    fridge = next(f for f in fees if f.item == "냉장고")
    assert (fridge.fee, fridge.paid) == (0, False)
    assert all(isinstance(f.fee, int) and f.source == "sample" for f in fees)
    assert {f.province for f in fees} >= {"서울특별시", "경기도", "부산광역시"}


def test_fee_rows_from_the_download_headers_and_cp949(tmp_path: Path) -> None:
    path = tmp_path / "fees.csv"
    path.write_text(
        "시도명,시군구명,대형폐기물명,대형폐기물규격,수수료,유무료여부,관리기관명\n"
        '대구광역시,수성구,소파,3인용 이상,"9,000원",유료,대구광역시 수성구청\n'
        "대구광역시,수성구,세탁기,모든 규격,,무료,대구광역시 수성구청\n",
        encoding="cp949",
    )
    rows = load_fees_csv(path)
    assert [(r.region, r.item, r.fee, r.paid, r.source) for r in rows] == [
        ("대구광역시 수성구", "소파", 9000, True, "file"),
        ("대구광역시 수성구", "세탁기", 0, False, "file"),
    ]


def test_unusable_fee_rows_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "ctpvNm,sggNm,larWasNm,larWasSpcfct,fee,paidFreeYn,mngInstNm\n서울특별시,중구,소파,1인용,abc,유료,중구청\n"
    )
    with pytest.raises(ValueError, match=r"bad.csv:2"):
        load_fees_csv(path)
    # a paid flag the importer does not know falls back on the fee
    assert parse_fee_row({"larWasNm": "의자", "fee": "2000", "paidFreeYn": "?"}, source="x").paid


@pytest.mark.asyncio
async def test_in_memory_fees_match_item_and_region_words() -> None:
    fees = InMemoryBulkWasteFees.from_sample()
    assert {f.region for f in await fees.fees("소파", regions=["서울", "중구"])} == {
        "서울특별시 중구"
    }
    assert len(await fees.fees("소파")) > 5
    assert await fees.fees("소파", regions=["대구"]) == []


def test_price_sample_is_26_items_by_9_regions_by_month() -> None:
    rows = load_prices_csv(PRICES_SAMPLE, source="sample")
    months = sorted({r.month for r in rows})
    assert months == ["2026-09", "2026-10"]
    latest = [r for r in rows if r.month == "2026-10"]
    assert len({r.item for r in latest}) == 26
    assert {r.region for r in latest} == set(REGIONS)
    assert {r.category for r in latest} == set(CATEGORIES)
    assert len(latest) == 26 * 9
    can = next(r for r in latest if r.item == "알루미늄캔 압축" and r.region == "national")
    assert can.price == 1500.0 and can.unit == "원/kg"  # "1,500" in the file
    assert all(isinstance(r.price, float) and r.price > 0 for r in rows)


def test_price_rows_with_korean_headers_and_names() -> None:
    row = parse_price_row(
        {
            "조사년월": "202610",
            "지역": "수도권",
            "품목분류": "폐지",
            "품목명": "골판지",
            "단위": "원/kg",
            "가격": " 98.5 ",
        },
        source="data.go.kr",
    )
    assert (row.month, row.region, row.category, row.price) == ("2026-10", "capital", "paper", 98.5)
    with pytest.raises(ValueError, match="region"):
        parse_price_row(
            {
                "survey_month": "2026-10",
                "region": "화성",
                "category": "paper",
                "item": "x",
                "price": "1",
            },
            source="x",
        )
    assert previous_month("2026-01") == "2025-12" and previous_month("2026-10") == "2026-09"


@pytest.mark.asyncio
async def test_in_memory_prices_serve_the_latest_survey() -> None:
    prices = InMemoryRecyclablePrices.from_sample()
    latest = await prices.survey()
    assert {r.month for r in latest} == {"2026-10"}
    assert len(await prices.survey("2026-09")) == 234
    assert await prices.survey("2020-01") == []


@pytest.mark.asyncio
async def test_sample_places_nearest_first_within_radius() -> None:
    places = load_places_csv(PLACES_SAMPLE)
    assert all(p.source == "sample" and "(샘플)" in p.name for p in places)
    locations = InMemoryLocations(places)
    near = await locations.nearest(37.5663, 126.9779, 3000, "battery", 10)
    assert [p.id for p in near][:3] == ["p-002", "p-005", "p-006"]
    assert all(p.distance_m is not None and p.distance_m <= 3000 for p in near)
    assert near == sorted(near, key=lambda p: p.distance_m or 0)
    assert "p-201" not in {p.id for p in near}  # Busan is far away
    shops = await locations.nearest(37.4979, 127.0276, 2000, "zero_waste_shop", 5)
    assert [p.id for p in shops] == ["s-101"] and shops[0].store_category == "zero_waste_shop"
    [pet] = await locations.nearest(37.5663, 126.9779, 3000, "pet", 1)
    assert pet.id == "p-001" and pet.distance_m is not None and pet.distance_m < 30
