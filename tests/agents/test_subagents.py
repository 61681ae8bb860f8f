"""Each subagent on its own, over its offline adapter: what it finds and how it says it."""

from __future__ import annotations

import struct
import zlib
from datetime import datetime
from typing import Any

import pytest

from agents.chat.errors import SourceNotConfigured
from agents.chat.korean import copula, distance_text, obj, topic, with_means, won
from agents.chat.media import InMemoryChatMedia
from agents.chat.subagents import (
    bulk_waste,
    character,
    collection_point,
    image_generation,
    location,
    recyclable_price,
    waste_rag,
    weather,
    web_search,
)
from agents.chat.subagents.base import SubTask
from agents.chat.subagents.bulk_waste_data import InMemoryBulkWasteFees
from agents.chat.subagents.infocard import render_info_card
from agents.chat.subagents.places import InMemoryLocations
from agents.chat.subagents.recyclable_price_data import InMemoryRecyclablePrices
from agents.chat.subagents.waste_rag import LocalKnowledge
from agents.chat.subagents.weather import KST, OfflineWeather, WeatherReport, base_time, kma_grid
from agents.chat.turn import GeoPoint
from agents.knowledge import KnowledgeBase
from characters import InMemoryCharacters

CITY_HALL = GeoPoint(latitude=37.5663, longitude=126.9779)
BUSAN = GeoPoint(latitude=35.1632, longitude=129.1636)


@pytest.fixture(scope="module")
def kb() -> LocalKnowledge:
    return LocalKnowledge(KnowledgeBase.load())


def task(stage: str, query: str, **kw: Any) -> SubTask:
    intent = "waste" if stage == "waste_rag" else stage
    return SubTask(stage=stage, intent=intent, query=query, message=kw.pop("message", query), **kw)


@pytest.mark.asyncio
async def test_waste_rag_rules_for_each_named_item(kb: LocalKnowledge) -> None:
    found = await waste_rag.run(task("waste_rag", "우유팩이랑 신문지 어떻게 버려?"), kb)
    assert found.found and found.detail["hits"] == ["신문지", "우유팩"]
    assert "종이팩" in found.text and "1. " in found.text  # numbered item-level steps
    labelled = await waste_rag.run(task("waste_rag", "라벨 안 뗀 페트병"), kb)
    assert "라벨이 붙어 있어요" in labelled.text  # the situation the user described


@pytest.mark.asyncio
async def test_waste_rag_finds_nothing_rather_than_guessing(kb: LocalKnowledge) -> None:
    for query in ("양자역학이 뭐야", "최근 분리배출 정책 뉴스", "스캔하면 뭐 줘?"):
        assert not (await waste_rag.run(task("waste_rag", query), kb)).found, query


@pytest.mark.asyncio
async def test_waste_rag_uses_the_image_hint(kb: LocalKnowledge) -> None:
    found = await waste_rag.run(task("waste_rag", "이거 어떻게 버려?", item_hint="음료캔"), kb)
    assert found.found and "금속류" in found.text


@pytest.mark.asyncio
async def test_collection_point_picks_bins_from_the_words() -> None:
    places = InMemoryLocations.from_sample()
    for query, kind, first in [
        ("근처 폐건전지 수거함", "battery", "p-002"),
        ("헌옷 버릴 곳", "clothing", "p-003"),
        ("먹다 남은 약 어디 버려", "medicine", "p-004"),
    ]:
        found = await collection_point.run(
            task("collection_point", query, location=CITY_HALL), places
        )
        assert found.detail["categories"] == [kind]
        assert found.sources[0]["id"] == first
    anything = await collection_point.run(
        task("collection_point", "근처 수거함", location=CITY_HALL), places
    )
    assert anything.found and all(s["id"].startswith("p-") for s in anything.sources)
    # the other half of the message names the item
    pet = await collection_point.run(
        task(
            "collection_point",
            "근처 수거함도 알려줘",
            message="페트병 어떻게 버려? 근처 수거함도 알려줘",
            location=CITY_HALL,
        ),
        places,
    )
    assert pet.detail["categories"] == ["pet"]
    far = await collection_point.run(
        task("collection_point", "폐의약품 수거함", location=BUSAN), places
    )
    assert not far.found


@pytest.mark.asyncio
async def test_location_finds_stores_of_the_kind_asked() -> None:
    places = InMemoryLocations.from_sample()
    shop = await location.run(
        task("location", "리필스테이션 어디 있어", location=CITY_HALL), places
    )
    assert shop.sources[0]["id"] == "s-003"
    anything = await location.run(
        task("location", "근처 재활용 관련 장소", location=CITY_HALL), places
    )
    assert {s["id"] for s in anything.sources} >= {"s-001", "s-002", "s-003"}
    assert not (
        await location.run(task("location", "근처 재활용센터"), places)
    ).found  # no location


@pytest.mark.asyncio
async def test_bulk_waste_fees_for_a_region_or_a_range() -> None:
    fees = InMemoryBulkWasteFees.from_sample()
    one = await bulk_waste.run(task("bulk_waste", "마포구 자전거 버리는 비용"), fees)
    assert "서울특별시 마포구의 자전거" in one.text and "3,000원" in one.text
    many = await bulk_waste.run(task("bulk_waste", "매트리스 수수료 얼마야"), fees)
    assert "6,000원~12,000원" in many.text and "시군구를 알려 주시면" in many.text
    fridge = await bulk_waste.run(task("bulk_waste", "냉장고 버리려면 돈 들어?"), fees)
    assert "1599-0903" in fridge.text
    unknown = await bulk_waste.run(task("bulk_waste", "대형폐기물 신청 방법"), fees)
    assert not unknown.found  # no item: the fallback chain (the KB's 대형폐기물 rule) answers
    assert bulk_waste.find_regions("가구 버리고 싶어 다시 물어볼게") == []
    assert bulk_waste.find_regions("경기도 수원시에서") == ["경기", "수원시"]


@pytest.mark.asyncio
async def test_recyclable_prices_by_region_and_trend() -> None:
    prices = InMemoryRecyclablePrices.from_sample()
    busan = await recyclable_price.run(task("recyclable_price", "캔 시세", location=BUSAN), prices)
    assert busan.detail["region"] == "gyeongnam" and "경남" in busan.text
    assert "지난달" in busan.text and "(샘플 데이터)" in busan.text
    named = await recyclable_price.run(task("recyclable_price", "강원 폐지 가격"), prices)
    assert named.detail["region"] == "gangwon" and len(named.detail["items"]) == 5
    headline = await recyclable_price.run(task("recyclable_price", "요즘 시세 어때"), prices)
    assert headline.detail["region"] == "national" and len(headline.detail["items"]) == 5


@pytest.mark.asyncio
async def test_character_for_an_item_and_the_catalog(kb: LocalKnowledge) -> None:
    characters = InMemoryCharacters(kb.kb.characters())
    petty = await character.run(
        task("character", "페트병 버리면 무슨 캐릭터 얻어?"), characters, kb
    )
    assert petty.detail["character"] == "페티" and "페티를 얻을 수 있어요" in petty.text
    catalog = await character.run(task("character", "캐릭터 뭐 있어?"), characters, kb)
    assert "13종" in catalog.text
    receipt = await character.run(task("character", "영수증 버리면 캐릭터 나와?"), characters, kb)
    assert "보상은 없어요" in receipt.text


@pytest.mark.asyncio
async def test_weather_offline_says_it_is_not_configured() -> None:
    with pytest.raises(SourceNotConfigured):
        await weather.run(task("weather", "날씨", location=CITY_HALL), OfflineWeather())


def test_weather_tips_and_kma_grid() -> None:
    hot_wet = WeatherReport(
        temperature_c=31,
        rain_mm_1h=2,
        precipitation=1,
        wind_ms=9,
        observed_at="2026-07-01 14:00",
        source="t",
    )
    assert len(weather.disposal_tips(hot_wet)) == 3
    assert kma_grid(37.5665, 126.9780) == (60, 127)  # Seoul
    assert kma_grid(35.1796, 129.0756) == (98, 76)  # Busan
    assert base_time(datetime(2026, 10, 1, 14, 39, tzinfo=KST)).hour == 13
    assert base_time(datetime(2026, 10, 1, 14, 40, tzinfo=KST)).hour == 14


@pytest.mark.asyncio
async def test_web_search_offline_is_not_configured() -> None:
    with pytest.raises(SourceNotConfigured):
        await web_search.run(task("web_search", "분리배출 뉴스"), web_search.OfflineWebSearch())


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def test_info_card_is_a_valid_png_with_its_text() -> None:
    data = render_info_card("투명 페트병 분리배출", ["비우기", "헹구기", "라벨 떼기"], "무색페트병")
    chunks = _png_chunks(data)
    kinds = [k for k, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND"
    width, height, depth, color = struct.unpack(">IIBB", chunks[0][1][:10])
    assert (width, height, depth, color) == (480, 640, 8, 2)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    assert len(raw) == height * (1 + width * 3)
    text = b"".join(b for k, b in chunks if k == b"iTXt")
    assert "투명 페트병 분리배출".encode() in text and "3. 라벨 떼기".encode() in text


@pytest.mark.asyncio
async def test_image_generation_stores_the_card(kb: LocalKnowledge) -> None:
    media = InMemoryChatMedia()
    found = await image_generation.run(
        task("image_generation", "유리병 버리는 법 그림으로 보여줘"),
        kb,
        image_generation.InfoCardRenderer(),
        media,
    )
    url = found.detail["url"]
    assert url in found.text and found.text.count("![") == 1
    stored = await media.load_image(url)
    assert stored is not None and stored.data is not None and stored.data.startswith(b"\x89PNG")
    generic = await image_generation.card_for(
        task("image_generation", "인포그래픽 하나 만들어줘"), kb
    )
    assert generic.title == image_generation.GENERIC_TITLE


def test_korean_particles_and_numbers() -> None:
    assert topic("페트병") == "페트병은" and topic("유리") == "유리는"
    assert obj("페티") == "페티를" and obj("메탈리") == "메탈리를" and obj("캔") == "캔을"
    assert with_means("종량제봉투") == "종량제봉투로" and with_means("금속류") == "금속류로"
    assert with_means("무색페트병") == "무색페트병으로" and with_means("물") == "물로"
    assert copula("수거함") == "수거함이에요" and copula("센터") == "센터예요"
    assert (
        distance_text(24) == "20m"
        and distance_text(1340) == "1.3km"
        and distance_text(5000) == "5km"
    )
    assert won(12000) == "12,000원" and won(65.1) == "65.1원"
