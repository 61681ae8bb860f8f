"""Recyclable prices (한국환경공단 재활용가능자원 가격조사): importer, port, adapters.

A monthly survey of ~26 items (categories ``paper``, ``plastic``, ``glass``, ``metal``,
``tire``) in 8 regions (``capital``, ``gangwon``, ``chungbuk``, ``chungnam``, ``jeonbuk``,
``jeonnam``, ``gyeongbuk``, ``gyeongnam``) plus ``national``. Our file format:
``survey_month,region,category,item,unit,price`` (prices are strings such as "1,500"); the
Korean headers 조사년월/지역/품목분류/품목명/단위/가격 and Korean region and category names
(수도권, 전국, 폐지, 고철 …) are accepted too.

Adapters: ``InMemoryRecyclablePrices`` (the shipped sample
``agents/data/recyclable_prices_sample.csv`` or an imported file) and ``DataGoKrRecyclablePrices``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from agents.chat.errors import SourceBadData
from agents.chat.http import HttpSource
from agents.chat.subagents.datagokr import number, reply_items

SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "recyclable_prices_sample.csv"

REGIONS = {
    "national": "전국",
    "capital": "수도권",
    "gangwon": "강원",
    "chungbuk": "충북",
    "chungnam": "충남",
    "jeonbuk": "전북",
    "jeonnam": "전남",
    "gyeongbuk": "경북",
    "gyeongnam": "경남",
}
CATEGORIES = {
    "paper": "폐지",
    "plastic": "폐플라스틱",
    "glass": "폐유리병",
    "metal": "고철·비철",
    "tire": "폐타이어",
}
_REGION_CODES = {v: k for k, v in REGIONS.items()} | {
    "충청북도": "chungbuk",
    "충청남도": "chungnam",
    "전라북도": "jeonbuk",
    "전라남도": "jeonnam",
    "경상북도": "gyeongbuk",
    "경상남도": "gyeongnam",
    "강원도": "gangwon",
    "전국평균": "national",
}
_CATEGORY_CODES = {v: k for k, v in CATEGORIES.items()} | {
    "종이": "paper",
    "플라스틱": "plastic",
    "유리": "glass",
    "유리병": "glass",
    "금속": "metal",
    "고철": "metal",
    "비철": "metal",
    "캔": "metal",
    "타이어": "tire",
}
# our column → accepted Korean headers
_HEADERS = {
    "survey_month": ("조사년월", "조사연월", "기준년월"),
    "region": ("지역", "지역명"),
    "category": ("품목분류", "분류", "구분"),
    "item": ("품목명", "품목"),
    "unit": ("단위",),
    "price": ("가격", "평균가격", "가격(원/kg)"),
}


class PriceRow(BaseModel):
    """One item's price in one region in one survey month."""

    model_config = ConfigDict(frozen=True)

    month: str  # YYYY-MM
    region: str  # code, see REGIONS
    category: str  # code, see CATEGORIES
    item: str
    unit: str
    price: float
    source: str  # "sample" | "file" | "data.go.kr"


def _month(raw: str) -> str:
    digits = "".join(ch for ch in raw if ch.isdigit())
    if len(digits) < 6:
        raise ValueError(f"bad survey month {raw!r}")
    return f"{digits[:4]}-{digits[4:6]}"


def parse_price_row(row: Mapping[str, Any], *, source: str) -> PriceRow:
    """One row (our or the Korean headers) → ``PriceRow``; ``ValueError`` when unusable."""

    def field(name: str) -> str:
        for key in (name, *_HEADERS[name]):
            value = row.get(key)
            if value is not None and str(value).strip():
                return str(value).strip()
        return ""

    region = field("region")
    region = region if region in REGIONS else _REGION_CODES.get(region.replace(" ", ""), "")
    if not region:
        raise ValueError(f"unknown region {field('region')!r}")
    category = field("category")
    category = category if category in CATEGORIES else _CATEGORY_CODES.get(category, "")
    if not category:
        raise ValueError(f"unknown category {field('category')!r}")
    item = field("item")
    if not item:
        raise ValueError("empty item")
    return PriceRow(
        month=_month(field("survey_month")),
        region=region,
        category=category,
        item=item,
        unit=field("unit") or "원/kg",
        price=number(field("price")),
        source=source,
    )


def load_prices_csv(path: Path, *, source: str = "file") -> list[PriceRow]:
    """Import a price-survey CSV (UTF-8 with or without BOM, or CP949)."""
    for encoding in ("utf-8-sig", "cp949"):
        try:
            text = path.read_text(encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError(f"{path}: neither UTF-8 nor CP949")
    rows = []
    for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        try:
            rows.append(parse_price_row(row, source=source))
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: {exc}") from exc
    return rows


class RecyclablePrices(Protocol):
    async def survey(self, month: str | None = None) -> list[PriceRow]:
        """Every row of one monthly survey (``YYYY-MM``; None: the latest available). Empty when
        that month was not surveyed."""
        ...


def previous_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year - 1}-12" if mon == 1 else f"{year}-{mon - 1:02d}"


class InMemoryRecyclablePrices:
    """``RecyclablePrices`` over imported rows (the sample by default)."""

    def __init__(self, rows: Iterable[PriceRow]) -> None:
        self.rows = list(rows)

    @classmethod
    def from_sample(cls, path: Path = SAMPLE_PATH) -> InMemoryRecyclablePrices:
        """The shipped sample (two months, clearly marked as sample data)."""
        return cls(load_prices_csv(path, source="sample"))

    async def survey(self, month: str | None = None) -> list[PriceRow]:
        """See ``RecyclablePrices.survey``."""
        if month is None:
            if not self.rows:
                return []
            month = max(r.month for r in self.rows)
        return [r for r in self.rows if r.month == month]


class DataGoKrRecyclablePrices(HttpSource):
    """``RecyclablePrices`` on the survey's open API (JSON, ``serviceKey``).

    Asked for one month with ``srvyYm=YYYYMM``; without a month the newest rows are fetched and
    the latest month in them is kept.
    """

    name = "recyclable-price-api"

    def __init__(
        self,
        service_key: str,
        *,
        base_url: str = "https://apis.data.go.kr",
        path: str = "/B552584/RecyclableResourcePriceService/getPriceList",
        timeout_s: float = 8.0,
        rows: int = 500,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout_s=timeout_s, transport=transport)
        self._key = service_key
        self._path = path
        self._rows = rows

    async def survey(self, month: str | None = None) -> list[PriceRow]:
        """See ``RecyclablePrices.survey``."""
        body = await self.get_json(
            self._path,
            {
                "serviceKey": self._key,
                "pageNo": 1,
                "numOfRows": self._rows,
                "returnType": "json",
                "srvyYm": month.replace("-", "") if month else None,
            },
        )
        rows = []
        for raw in reply_items(body, self.name):
            try:
                rows.append(parse_price_row(raw, source="data.go.kr"))
            except ValueError as exc:
                raise SourceBadData(f"{self.name}: unreadable row: {exc}") from exc
        if not rows:
            return []
        wanted = month or max(r.month for r in rows)
        return [r for r in rows if r.month == wanted]
