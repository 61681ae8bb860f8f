"""The public-data adapters (data.go.kr's bulk-waste fees and recyclable prices, the KMA's
current weather) against a loopback stub server: request shape, parsing, result codes,
timeouts and server errors.

The stub (``tests.agents.wirestub.WireStub``) is a real HTTP server, so each adapter's whole
httpx stack runs as in production, only the host differs. The failure tests' clients time out
after 1 s and the replies meant to time out wait 30 s (the stub wakes them when it stops).
"""

from __future__ import annotations

from datetime import datetime

import pytest

from agents.chat.errors import SourceBadData, SourceUnavailable
from agents.chat.subagents.bulk_waste_data import DataGoKrBulkWasteFees
from agents.chat.subagents.recyclable_price_data import DataGoKrRecyclablePrices
from agents.chat.subagents.weather import KST, KmaWeather
from tests.agents.stubs import payloads
from tests.agents.wirestub import Reply, WireStub

pytestmark = pytest.mark.asyncio


# --- data.go.kr datasets -----------------------------------------------------------------------


async def test_bulk_waste_api_parses_string_numbers(stub: WireStub) -> None:
    items = [
        {
            "ctpvNm": "서울특별시",
            "sggNm": "강남구",
            "larWasNm": "소파",
            "larWasSpcfct": "3인용 이상",
            "fee": "12000",
            "paidFreeYn": "유료",
            "mngInstNm": "강남구청",
        },
        {
            "ctpvNm": "부산광역시",
            "sggNm": "해운대구",
            "larWasNm": "소파",
            "larWasSpcfct": "1인용",
            "fee": "3,000",
            "paidFreeYn": "유료",
            "mngInstNm": "해운대구청",
        },
    ]
    stub.enqueue(Reply.json(payloads.datagokr(items, wrap=True)))
    async with DataGoKrBulkWasteFees(
        "svc-key", base_url=stub.base_url, path="/fees", timeout_s=2
    ) as api:
        rows = await api.fees("소파", regions=["서울"])
    assert [(r.region, r.fee, r.paid, r.source) for r in rows] == [
        ("서울특별시 강남구", 12000, True, "data.go.kr")
    ]
    assert stub.requests[-1].params == {
        "serviceKey": "svc-key",
        "pageNo": "1",
        "numOfRows": "200",
        "type": "json",
        "larWasNm": "소파",
    }


async def test_data_go_kr_result_codes(stub: WireStub) -> None:
    async with DataGoKrBulkWasteFees(
        "k", base_url=stub.base_url, path="/fees", timeout_s=1
    ) as api:
        stub.enqueue(Reply.json(payloads.datagokr([], code="03")))
        assert await api.fees("소파") == []
        stub.enqueue(Reply.json(payloads.datagokr([], code="22")))
        with pytest.raises(SourceUnavailable, match="quota"):
            await api.fees("소파")
        stub.enqueue(Reply.json(payloads.datagokr([], code="30")))
        with pytest.raises(SourceBadData, match="30"):
            await api.fees("소파")
        stub.enqueue(Reply.json(payloads.datagokr([{"larWasNm": "소파", "fee": "비쌈"}])))
        with pytest.raises(SourceBadData, match="unreadable row"):
            await api.fees("소파")
        stub.enqueue(Reply.json({}, status=502))
        with pytest.raises(SourceUnavailable):
            await api.fees("소파")
        stub.enqueue(Reply.json({}, delay_s=30))
        with pytest.raises(SourceUnavailable):
            await api.fees("소파")


async def test_recyclable_price_api_keeps_the_latest_month(stub: WireStub) -> None:
    items = [
        {
            "조사년월": "202609",
            "지역": "전국",
            "품목분류": "고철",
            "품목명": "고철 중량",
            "단위": "원/kg",
            "가격": "446",
        },
        {
            "조사년월": "202610",
            "지역": "전국",
            "품목분류": "고철",
            "품목명": "고철 중량",
            "단위": "원/kg",
            "가격": "420",
        },
        {
            "조사년월": "202610",
            "지역": "수도권",
            "품목분류": "폐지",
            "품목명": "골판지",
            "단위": "원/kg",
            "가격": "1,05",
        },
    ]
    stub.enqueue(Reply.json(payloads.datagokr(items)))
    async with DataGoKrRecyclablePrices(
        "k", base_url=stub.base_url, path="/prices", timeout_s=2
    ) as api:
        rows = await api.survey()
        assert [(r.month, r.region, r.item, r.price) for r in rows] == [
            ("2026-10", "national", "고철 중량", 420.0),
            ("2026-10", "capital", "골판지", 105.0),
        ]
        stub.enqueue(Reply.json(payloads.datagokr(items[:1])))
        assert [r.price for r in await api.survey("2026-09")] == [446.0]
    assert stub.requests[-1].params["srvyYm"] == "202609" and "srvyYm" not in stub.requests[0].params


# --- KMA weather -------------------------------------------------------------------------------


async def test_kma_current_weather(stub: WireStub) -> None:
    values = {"T1H": "12.3", "RN1": "강수없음", "REH": "60", "PTY": "0", "WSD": "2.1"}
    stub.enqueue(
        Reply.json(
            payloads.datagokr(
                payloads.kma_items(values, base_date="20261001", base_time="1400", nx=60, ny=127)
            )
        )
    )
    now = datetime(2026, 10, 1, 14, 45, tzinfo=KST)
    async with KmaWeather("k", base_url=stub.base_url, timeout_s=2, now=lambda: now) as kma:
        report = await kma.current(37.5665, 126.9780)
    assert (report.temperature_c, report.humidity_pct, report.rain_mm_1h, report.wind_ms) == (
        12.3,
        60.0,
        0.0,
        2.1,
    )
    assert not report.wet and report.observed_at == "2026-10-01 14:00"
    q = stub.requests[-1].params
    assert (q["nx"], q["ny"], q["base_date"], q["base_time"], q["dataType"]) == (
        "60",
        "127",
        "20261001",
        "1400",
        "JSON",
    )


async def test_kma_failures(stub: WireStub) -> None:
    async with KmaWeather("k", base_url=stub.base_url, timeout_s=1) as kma:
        stub.enqueue(Reply.json(payloads.datagokr([{"category": "UUU", "obsrValue": "1"}])))
        with pytest.raises(SourceBadData, match="no temperature"):
            await kma.current(37.5, 127.0)
        stub.enqueue(Reply.json({}, status=500))
        with pytest.raises(SourceUnavailable):
            await kma.current(37.5, 127.0)
        stub.enqueue(Reply.json({}, delay_s=30))
        with pytest.raises(SourceUnavailable):
            await kma.current(37.5, 127.0)


