"""Live adapters (Kakao Local, Daum web search, Gemini images) and the chat graph on them, against
loopback stub servers: request shape, parsing, timeouts, 5xx, bad data. The public-data
adapters are in ``test_public_data_live.py``.

The stub (``tests.agents.wirestub.WireStub``) is a real HTTP server, so each adapter's whole
httpx / google-genai stack runs as in production, only the host differs. The failure tests'
clients time out after 1 s (their prompt replies must beat it on a loaded machine too) and the
replies meant to time out wait 30 s (the stub wakes them when it stops).
"""

from __future__ import annotations

import base64

import pytest

from agents.chat import (
    GeoPoint,
    Token,
    TurnInput,
    TurnResult,
    build_chat_graph,
    offline_chat_deps,
)
from agents.chat.errors import NodeFailed, SourceBadData, SourceUnavailable
from agents.chat.live import LiveSources, live_sources
from agents.chat.policies import FailMode, ManualClock, NodeGuard, NodePolicy
from agents.chat.subagents.image_generation import GeminiImageGenerator, InfoCard
from agents.chat.subagents.infocard import render_info_card
from agents.chat.subagents.places import KakaoLocalLocations
from agents.chat.subagents.weather import KmaWeather, OfflineWeather
from agents.chat.subagents.web_search import KakaoWebSearch
from tests.agents.stubs import payloads
from tests.agents.wirestub import Reply, WireStub, gemini_wire

pytestmark = pytest.mark.asyncio


# --- Kakao Local -------------------------------------------------------------------------------


async def test_kakao_local_keyword_search(stub: WireStub) -> None:
    stub.enqueue(
        Reply.json(
            payloads.kakao_reply(
                [
                    payloads.kakao_place("2", "을지로 폐건전지 수거함", 37.566, 126.991, 900),
                    payloads.kakao_place("1", "시청 폐건전지 수거함", 37.5665, 126.978, 25),
                    payloads.kakao_place("3", "먼 수거함", 37.60, 127.10, 9000),
                ]
            )
        ),
        path="/v2/local/search/keyword.json",
    )
    async with KakaoLocalLocations("rest-key", base_url=stub.base_url, timeout_s=2) as kakao:
        places = await kakao.nearest(37.5663, 126.9779, 3000, "battery", 5)
    assert [p.id for p in places] == ["kakao:1", "kakao:2"]  # nearest first, radius applied
    assert places[0].latitude == 37.5665 and places[0].distance_m == 25
    assert places[0].pickup_categories == ["battery"] and places[0].source == "kakao"
    request = stub.requests[0]
    assert request.headers["authorization"] == "KakaoAK rest-key"
    assert stub.requests[-1].params == {
        "query": "폐건전지 수거함",
        "x": "126.977900",
        "y": "37.566300",
        "radius": "3000",
        "sort": "distance",
        "size": "5",
    }


async def test_kakao_local_caps_radius_and_size(stub: WireStub) -> None:
    stub.enqueue(Reply.json(payloads.kakao_reply([])))
    async with KakaoLocalLocations("k", base_url=stub.base_url, timeout_s=2) as kakao:
        assert await kakao.nearest(37.5, 127.0, 50_000, None, 40) == []
    assert stub.requests[-1].params["radius"] == "20000" and stub.requests[-1].params["size"] == "15"


async def test_kakao_local_timeout_and_server_errors(stub: WireStub) -> None:
    async with KakaoLocalLocations("k", base_url=stub.base_url, timeout_s=1) as kakao:
        stub.enqueue(Reply.json(payloads.kakao_reply([]), delay_s=30))
        with pytest.raises(SourceUnavailable, match="in time"):
            await kakao.nearest(37.5, 127.0, 1000, "pet", 5)
        stub.enqueue(Reply.json({"errorType": "InternalError"}, status=500))
        with pytest.raises(SourceUnavailable, match="500"):
            await kakao.nearest(37.5, 127.0, 1000, "pet", 5)
        stub.enqueue(Reply.json({"errorType": "AccessDeniedError"}, status=401))
        with pytest.raises(SourceBadData, match="401"):
            await kakao.nearest(37.5, 127.0, 1000, "pet", 5)
        stub.enqueue(Reply(body=b"<html>oops</html>", content_type="text/html"))
        with pytest.raises(SourceBadData, match="not JSON"):
            await kakao.nearest(37.5, 127.0, 1000, "pet", 5)
        stub.enqueue(Reply.json({"documents": [{"id": "1"}]}))
        with pytest.raises(SourceBadData, match="unreadable"):
            await kakao.nearest(37.5, 127.0, 1000, "pet", 5)


async def test_node_policy_retries_a_500_against_the_live_adapter(stub: WireStub) -> None:
    stub.enqueue(
        Reply.json({}, status=503),
        Reply.json(payloads.kakao_reply([payloads.kakao_place("1", "수거함", 37.5, 127.0, 10)])),
    )
    guard = NodeGuard(
        {"collection_point": NodePolicy(2000, 2, 5, FailMode.FALLBACK)}, clock=ManualClock()
    )
    async with KakaoLocalLocations("k", base_url=stub.base_url, timeout_s=1) as kakao:
        places = await guard.call(
            "collection_point", lambda: kakao.nearest(37.5, 127.0, 1000, "pet", 5)
        )
        assert [p.name for p in places] == ["수거함"]
        assert len(stub.requests) == 2
        stub.enqueue(*[Reply.json({}, status=500)] * 3)
        with pytest.raises(NodeFailed) as failed:
            await guard.call("collection_point", lambda: kakao.nearest(37.5, 127.0, 1000, "pet", 5))
        assert failed.value.attempts == 3 and failed.value.reason == "error"


# --- Daum web search ---------------------------------------------------------------------------


async def test_kakao_web_search_strips_highlights(stub: WireStub) -> None:
    stub.enqueue(
        Reply.json(
            {
                "meta": {"total_count": 1},
                "documents": [
                    payloads.kakao_web(
                        "<b>투명 페트병</b> 분리배출 &amp; 의무화",
                        "https://news.example/1",
                        "공동주택 <b>투명</b> 페트병 별도 배출",
                    )
                ],
            }
        ),
        path="/v2/search/web",
    )
    async with KakaoWebSearch("k", base_url=stub.base_url, timeout_s=2) as search:
        [hit] = await search.search("투명 페트병 정책", 3)
    assert hit.title == "투명 페트병 분리배출 & 의무화"
    assert hit.snippet == "공동주택 투명 페트병 별도 배출"
    assert stub.requests[-1].params == {"query": "투명 페트병 정책", "size": "3", "sort": "accuracy"}


async def test_kakao_web_search_failures(stub: WireStub) -> None:
    async with KakaoWebSearch("k", base_url=stub.base_url, timeout_s=1) as search:
        stub.enqueue(Reply.json({}, status=429))
        with pytest.raises(SourceUnavailable):
            await search.search("q", 3)
        stub.enqueue(Reply.json({}, delay_s=30))
        with pytest.raises(SourceUnavailable):
            await search.search("q", 3)
        stub.enqueue(Reply.json({"documents": [{"title": "no url"}]}))
        with pytest.raises(SourceBadData):
            await search.search("q", 3)


# --- Gemini image ------------------------------------------------------------------------------

MODEL = "gemini-2.5-flash-image"
CARD = InfoCard(title="투명 페트병 분리배출", steps=["비우기", "라벨 떼기"], category="무색페트병")


def image_reply(data: bytes) -> dict[str, object]:
    part = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(data).decode()}}
    return gemini_wire.generate_response(parts=[part])


async def test_gemini_image_generation(stub: WireStub) -> None:
    png = render_info_card("x", ["a"])
    stub.enqueue(Reply.json(image_reply(png)), path=gemini_wire.generate_path(MODEL))
    generator = GeminiImageGenerator("g-key", base_url=stub.base_url, timeout_s=5)
    try:
        image = await generator.generate(CARD)
    finally:
        await generator.aclose()
    assert image.data == png and image.content_type == "image/png" and image.generator == MODEL
    body = stub.requests[0].json()
    assert "투명 페트병 분리배출" in str(body["contents"])
    assert gemini_wire.field(body["generationConfig"], "responseModalities") == ["IMAGE"]
    assert stub.requests[0].headers["x-goog-api-key"] == "g-key"


async def test_gemini_image_failures(stub: WireStub) -> None:
    generator = GeminiImageGenerator("k", base_url=stub.base_url, timeout_s=1)
    try:
        stub.enqueue(Reply.json(gemini_wire.error(503, "overloaded", "UNAVAILABLE"), status=503))
        with pytest.raises(SourceUnavailable, match="503"):
            await generator.generate(CARD)
        stub.enqueue(
            Reply.json(gemini_wire.error(400, "bad prompt", "INVALID_ARGUMENT"), status=400)
        )
        with pytest.raises(SourceBadData, match="400"):
            await generator.generate(CARD)
        stub.enqueue(Reply.json(gemini_wire.generate_response("I cannot draw that")))
        with pytest.raises(SourceBadData, match="no image"):
            await generator.generate(CARD)
        stub.enqueue(Reply.json(image_reply(b"x"), delay_s=30))
        with pytest.raises(SourceUnavailable, match="no answer"):
            await generator.generate(CARD)
    finally:
        await generator.aclose()


# --- the graph on live sources -----------------------------------------------------------------


async def test_graph_answers_from_live_sources(stub: WireStub) -> None:
    offline = offline_chat_deps()
    sources = LiveSources(
        kakao_rest_key="kakao-key",
        kakao_base_url=stub.base_url,
        data_go_kr_key="svc",
        data_go_kr_base_url=stub.base_url,
        bulk_waste_base_url=stub.base_url,
    )
    stub.enqueue(
        Reply.json(
            payloads.kakao_reply(
                [payloads.kakao_place("77", "카카오 투명페트병 수거함", 37.5665, 126.978, 30)]
            )
        ),
        path="/v2/local/search/keyword.json",
    )
    values = {"T1H": "8.5", "RN1": "1.5", "REH": "95", "PTY": "1", "WSD": "3"}
    stub.enqueue(
        Reply.json(
            payloads.datagokr(
                payloads.kma_items(values, base_date="20261001", base_time="1400", nx=60, ny=127)
            )
        ),
        path="getUltraSrtNcst",
    )
    async with live_sources(offline, sources) as deps:
        assert isinstance(deps.locations, KakaoLocalLocations) and isinstance(
            deps.weather, KmaWeather
        )
        graph = build_chat_graph(deps)
        turn = TurnInput(
            chat_id="c",
            user_id="u",
            message="페트병 어떻게 버려? 근처 수거함도 알려줘",
            location=GeoPoint(latitude=37.5663, longitude=126.9779),
        )
        items = [item async for item in graph.run(turn)]
    result = items[-1]
    assert isinstance(result, TurnResult)
    assert "카카오 투명페트병 수거함" in result.answer and "약 30m" in result.answer
    assert "기온 8.5°C" in result.answer and "젖지 않게" in result.answer
    assert result.subagents == ["waste_rag", "collection_point", "weather"]
    assert "".join(i.content for i in items if isinstance(i, Token)) == result.answer
    assert isinstance(offline.weather, OfflineWeather)  # the offline deps are left as they were
