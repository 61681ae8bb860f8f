"""``weather``: the current weather where the user is (also added next to waste answers).

Adapters: ``OfflineWeather`` (reports itself not configured: the OPEN policy skips the node and
the answer says so) and ``KmaWeather`` (기상청 단기예보 조회서비스, 초단기실황
``getUltraSrtNcst`` on data.go.kr: latitude/longitude → the KMA 5 km grid, observations of the
last full hour).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from agents.chat.errors import SourceBadData, SourceNotConfigured
from agents.chat.http import HttpSource
from agents.chat.subagents.base import Finding, SubTask, not_found
from agents.chat.subagents.datagokr import number, reply_items

STAGE = "weather"
KST = timezone(timedelta(hours=9))
PRECIPITATION = {
    0: "없음",
    1: "비",
    2: "비/눈",
    3: "눈",
    5: "빗방울",
    6: "빗방울/눈날림",
    7: "눈날림",
}


class WeatherReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    temperature_c: float | None = None
    humidity_pct: float | None = None
    rain_mm_1h: float = 0.0
    precipitation: int = 0  # KMA PTY code, see PRECIPITATION
    wind_ms: float | None = None
    observed_at: str  # "YYYY-MM-DD HH:MM" KST
    source: str

    @property
    def wet(self) -> bool:
        return self.precipitation != 0 or self.rain_mm_1h > 0


class WeatherPort(Protocol):
    async def current(self, lat: float, lon: float) -> WeatherReport:
        """Current weather at the point; ``SourceNotConfigured`` when there is no service."""
        ...


class OfflineWeather:
    """No weather offline: says so, so the policy skips the node rather than inventing weather."""

    async def current(self, lat: float, lon: float) -> WeatherReport:
        raise SourceNotConfigured("weather: no weather service is configured (offline)")


def kma_grid(lat: float, lon: float) -> tuple[int, int]:
    """KMA forecast grid (nx, ny) of a point: Lambert conformal conic, 5 km cells."""
    re, grid = 6371.00877, 5.0
    slat1, slat2, olon, olat = map(math.radians, (30.0, 60.0, 126.0, 38.0))
    xo, yo = 43, 136
    r = re / grid
    sn = math.log(math.cos(slat1) / math.cos(slat2)) / math.log(
        math.tan(math.pi / 4 + slat2 / 2) / math.tan(math.pi / 4 + slat1 / 2)
    )
    sf = math.tan(math.pi / 4 + slat1 / 2) ** sn * math.cos(slat1) / sn
    ro = r * sf / math.tan(math.pi / 4 + olat / 2) ** sn
    ra = r * sf / math.tan(math.pi / 4 + math.radians(lat) / 2) ** sn
    theta = math.radians(lon) - olon
    theta = (theta + math.pi) % (2 * math.pi) - math.pi
    theta *= sn
    return (
        math.floor(ra * math.sin(theta) + xo + 0.5),
        math.floor(ro - ra * math.cos(theta) + yo + 0.5),
    )


def base_time(now: datetime) -> datetime:
    """The newest published observation hour: KMA publishes each hour's data at about HH:40."""
    kst = now.astimezone(KST)
    hour = kst.replace(minute=0, second=0, microsecond=0)
    return hour if kst.minute >= 40 else hour - timedelta(hours=1)


class KmaWeather(HttpSource):
    """``WeatherPort`` on 기상청 초단기실황 (``serviceKey``, JSON)."""

    name = "kma-weather"

    def __init__(
        self,
        service_key: str,
        *,
        base_url: str = "https://apis.data.go.kr",
        path: str = "/1360000/VilageFcstInfoService_2.0/getUltraSrtNcst",
        timeout_s: float = 4.0,
        now: Callable[[], datetime] = lambda: datetime.now(KST),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout_s=timeout_s, transport=transport)
        self._key = service_key
        self._path = path
        self._now = now

    async def current(self, lat: float, lon: float) -> WeatherReport:
        """See ``WeatherPort.current``."""
        nx, ny = kma_grid(lat, lon)
        at = base_time(self._now())
        body = await self.get_json(
            self._path,
            {
                "serviceKey": self._key,
                "pageNo": 1,
                "numOfRows": 20,
                "dataType": "JSON",
                "base_date": at.strftime("%Y%m%d"),
                "base_time": at.strftime("%H00"),
                "nx": nx,
                "ny": ny,
            },
        )
        values: dict[str, float] = {}
        for item in reply_items(body, self.name):
            try:
                values[str(item["category"])] = number(item["obsrValue"])
            except (KeyError, ValueError):
                continue  # "강수없음"-style texts and unknown fields are not needed
        if "T1H" not in values and "PTY" not in values:
            raise SourceBadData(f"{self.name}: no temperature or precipitation in the reply")
        return WeatherReport(
            temperature_c=values.get("T1H"),
            humidity_pct=values.get("REH"),
            rain_mm_1h=max(values.get("RN1", 0.0), 0.0),
            precipitation=int(values.get("PTY", 0)),
            wind_ms=values.get("WSD"),
            observed_at=at.strftime("%Y-%m-%d %H:%M"),
            source="기상청 초단기실황",
        )


def disposal_tips(report: WeatherReport) -> list[str]:
    """What the weather means for taking out the rubbish today."""
    tips = []
    if report.wet:
        tips.append(
            "비나 눈이 오고 있어요. 종이류·종이팩은 젖으면 재활용이 어려우니 "
            "그친 뒤 내놓거나 젖지 않게 덮어 주세요."
        )
    if report.temperature_c is not None and report.temperature_c >= 28:
        tips.append(
            "더운 날이에요. 음식물 쓰레기는 물기를 빼서 자주 버려야 냄새와 벌레가 덜 생겨요."
        )
    if report.wind_ms is not None and report.wind_ms >= 8:
        tips.append("바람이 강해요. 비닐·스티로폼은 날아가지 않게 묶거나 눌러서 내놓으세요.")
    return tips


def describe(report: WeatherReport) -> str:
    parts = []
    if report.temperature_c is not None:
        parts.append(f"기온 {report.temperature_c:.1f}°C")
    if report.humidity_pct is not None:
        parts.append(f"습도 {report.humidity_pct:.0f}%")
    rain = PRECIPITATION.get(report.precipitation, "강수")
    parts.append(
        f"강수 {rain}" + (f" ({report.rain_mm_1h:g}mm/h)" if report.rain_mm_1h > 0 else "")
    )
    if report.wind_ms is not None:
        parts.append(f"바람 {report.wind_ms:g}m/s")
    return f"현재 날씨({report.source}, {report.observed_at[-5:]} 기준): " + ", ".join(parts) + "."


async def run(task: SubTask, weather: WeatherPort) -> Finding:
    """The current weather and what it means for taking the rubbish out."""
    if task.location is None:
        return not_found(STAGE, reason="no_location")
    report = await weather.current(task.location.latitude, task.location.longitude)
    tips = disposal_tips(report)
    lines = [describe(report), *tips]
    return Finding(
        stage=STAGE,
        found=True,
        title="현재 날씨",
        text="\n".join(lines),
        sources=[{"type": "weather", "name": report.source, "observed_at": report.observed_at}],
        detail={
            "temperature_c": report.temperature_c,
            "precipitation": report.precipitation,
            "tips": len(tips),
        },
    )
