"""Bulk-waste fees (환경부 전국대형폐기물수거수수료정보 표준데이터): importer, port, adapters.

Columns (API field names; the CSV download's Korean headers are accepted too): ``ctpvNm``
시도명, ``sggNm`` 시군구명, ``larWasNm`` 대형폐기물명, ``larWasSpcfct`` 대형폐기물규격, ``fee``
수수료, ``paidFreeYn`` 유무료여부, ``mngInstNm`` 관리기관명. Every value arrives as a string;
the importer turns fees into integers (won) and the paid flag into a boolean.

Adapters: ``InMemoryBulkWasteFees`` (the shipped sample ``agents/data/bulk_waste_fees_sample.csv``
or an imported download) and ``DataGoKrBulkWasteFees`` (the dataset's open API).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict

from agents.chat.errors import SourceBadData
from agents.chat.http import HttpSource
from agents.chat.subagents.datagokr import number, reply_items

SAMPLE_PATH = Path(__file__).resolve().parents[2] / "data" / "bulk_waste_fees_sample.csv"

# API field → the Korean header of the file download
COLUMNS = {
    "ctpvNm": "시도명",
    "sggNm": "시군구명",
    "larWasNm": "대형폐기물명",
    "larWasSpcfct": "대형폐기물규격",
    "fee": "수수료",
    "paidFreeYn": "유무료여부",
    "mngInstNm": "관리기관명",
}
_PAID = {"유료", "y", "yes", "paid", "1"}
_FREE = {"무료", "n", "no", "free", "0"}


class BulkWasteFee(BaseModel):
    """One fee row: what it costs to have one bulky item of one size collected."""

    model_config = ConfigDict(frozen=True)

    province: str  # ctpvNm, e.g. 서울특별시
    district: str  # sggNm, e.g. 강남구
    item: str  # larWasNm
    spec: str  # larWasSpcfct, e.g. 2인용
    fee: int  # won
    paid: bool
    agency: str  # mngInstNm
    source: str  # "sample" | "file" | "data.go.kr"

    @property
    def region(self) -> str:
        return f"{self.province} {self.district}".strip()


def parse_fee_row(row: Mapping[str, Any], *, source: str) -> BulkWasteFee:
    """One row (API or download headers) → ``BulkWasteFee``; ``ValueError`` when unusable."""

    def field(name: str) -> str:
        value = row.get(name)
        if value is None:
            value = row.get(COLUMNS[name])
        return "" if value is None else str(value).strip()

    item = field("larWasNm")
    if not item:
        raise ValueError("larWasNm is empty")
    raw_fee = field("fee")
    fee = round(number(raw_fee)) if raw_fee else 0
    flag = field("paidFreeYn").lower()
    paid = True if flag in _PAID else False if flag in _FREE else fee > 0
    return BulkWasteFee(
        province=field("ctpvNm"),
        district=field("sggNm"),
        item=item,
        spec=field("larWasSpcfct"),
        fee=fee,
        paid=paid,
        agency=field("mngInstNm"),
        source=source,
    )


def load_fees_csv(path: Path, *, source: str = "file") -> list[BulkWasteFee]:
    """Import a CSV in the standard format (UTF-8 with or without BOM, or CP949 as downloaded)."""
    for encoding in ("utf-8-sig", "cp949"):
        try:
            text = path.read_text(encoding=encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ValueError(f"{path}: neither UTF-8 nor CP949")
    fees = []
    for n, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        try:
            fees.append(parse_fee_row(row, source=source))
        except ValueError as exc:
            raise ValueError(f"{path}:{n}: {exc}") from exc
    return fees


class BulkWasteFees(Protocol):
    async def fees(self, item: str, *, regions: Sequence[str] = ()) -> list[BulkWasteFee]:
        """Fee rows for ``item`` (matched on the item name), restricted to rows whose province or
        district starts with every word of ``regions`` ("서울", "강남구") when given."""
        ...


def matches(fee: BulkWasteFee, item: str, regions: Sequence[str]) -> bool:
    """Whether a row is about ``item`` in every one of ``regions``."""
    name = fee.item.replace(" ", "")
    wanted = item.replace(" ", "")
    if not (wanted in name or name in wanted):
        return False
    # prefixes, not substrings: "대구" must not match 해운대구
    return all(fee.province.startswith(r) or fee.district.startswith(r) for r in regions)


class InMemoryBulkWasteFees:
    """``BulkWasteFees`` over imported rows (the sample by default)."""

    def __init__(self, rows: Iterable[BulkWasteFee]) -> None:
        self.rows = list(rows)

    @classmethod
    def from_sample(cls, path: Path = SAMPLE_PATH) -> InMemoryBulkWasteFees:
        """The shipped sample: a few municipalities, clearly marked as sample data."""
        return cls(load_fees_csv(path, source="sample"))

    async def fees(self, item: str, *, regions: Sequence[str] = ()) -> list[BulkWasteFee]:
        """See ``BulkWasteFees.fees``."""
        return [f for f in self.rows if matches(f, item, regions)]


class DataGoKrBulkWasteFees(HttpSource):
    """``BulkWasteFees`` on the standard dataset's open API (``serviceKey``, JSON replies).

    The API filters by ``larWasNm``; region words are applied here, since users write "서울"
    where the data says "서울특별시".
    """

    name = "bulk-waste-api"

    def __init__(
        self,
        service_key: str,
        *,
        base_url: str = "https://api.data.go.kr",
        path: str = "/openapi/tn_pubr_public_lrgscl_wste_colct_fee_api",
        timeout_s: float = 8.0,
        rows: int = 200,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, timeout_s=timeout_s, transport=transport)
        self._key = service_key
        self._path = path
        self._rows = rows

    async def fees(self, item: str, *, regions: Sequence[str] = ()) -> list[BulkWasteFee]:
        """See ``BulkWasteFees.fees``."""
        body = await self.get_json(
            self._path,
            {
                "serviceKey": self._key,
                "pageNo": 1,
                "numOfRows": self._rows,
                "type": "json",
                "larWasNm": item,
            },
        )
        rows = []
        for raw in reply_items(body, self.name):
            try:
                rows.append(parse_fee_row(raw, source="data.go.kr"))
            except ValueError as exc:
                raise SourceBadData(f"{self.name}: unreadable row: {exc}") from exc
        return [f for f in rows if matches(f, item, regions)]
