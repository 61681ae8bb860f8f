"""Reading published tables: CSV files as the portals ship them (UTF-8 with BOM or CP949,
Korean headers whose spelling varies between releases) and records from JSON exports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

_NOISE = re.compile(r"[\s()\[\]_\-·.:/]+")


def normalize_header(name: str) -> str:
    """'소재지 도로명주소 ' → '소재지도로명주소'; 'instl_plc_nm' → 'instlplcnm'."""
    return _NOISE.sub("", name.replace("\ufeff", "")).lower()


def decode_bytes(raw: bytes) -> str:
    """Portal files come as UTF-8 (often with a BOM) or as CP949 (EUC-KR's superset)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp949")


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file as {normalized header: stripped value}."""
    text = decode_bytes(path.read_bytes())
    first_line = text.split("\n", 1)[0]
    delimiter = max(",\t;|", key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = [normalize_header(h) for h in next(reader)]
    except StopIteration:
        return []
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        rows.append({h: v.strip() for h, v in zip(headers, values, strict=False) if h})
    return rows


@dataclass(frozen=True)
class Field:
    """One logical column and the header spellings it goes by (normalized on lookup)."""

    name: str
    aliases: tuple[str, ...]

    def keys(self) -> tuple[str, ...]:
        return tuple(normalize_header(a) for a in self.aliases)


def pick(row: Mapping[str, Any], spec: Field) -> str | None:
    """The first non-empty value of ``spec`` in ``row`` (keys already normalized)."""
    for key in spec.keys():
        value = row.get(key)
        if value is None:
            continue
        text = str(value).strip()
        if text and text.lower() not in {"null", "none", "-", "nan"}:
            return text
    return None


def normalize_keys(record: Mapping[str, Any]) -> dict[str, Any]:
    return {normalize_header(str(k)): v for k, v in record.items()}


def parse_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.replace(",", ""))
    except ValueError:
        return None


def korean_coordinates(lat_text: str | None, lon_text: str | None) -> tuple[float, float] | None:
    """(lat, lon) from a row, or None when missing or implausible. Swapped columns (a known
    defect of some municipal files: 위도 127.0, 경도 37.5) are put right."""
    lat, lon = parse_float(lat_text), parse_float(lon_text)
    if lat is None or lon is None:
        return None
    if 100 <= lat <= 180 and 0 < lon <= 90:
        lat, lon = lon, lat
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lat, lon


_DATE = re.compile(r"(\d{4})[-./]?(\d{1,2})[-./]?(\d{1,2})")


def parse_date(value: str | None) -> date | None:
    """'2024-05-31', '2024.05.31', '20240531' → date; anything else → None."""
    if not value:
        return None
    match = _DATE.search(value)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def stable_key(*parts: object) -> str:
    """A row key that survives re-imports when the dataset has no id column."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:24]


def find_records(data: Any) -> list[dict[str, Any]]:
    """The list of records inside a JSON export, whatever the portal wrapped it in: a bare
    list, ``{"data": [...]}`` (odcloud), ``{"response": {"body": {"items": {"item": [...]}}}}``
    (data.go.kr), ``{"<Service>": {"row": [...]}}`` (Seoul open data), ``{"records": [...]}``."""
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    if not isinstance(data, dict):
        return []
    for key in ("data", "DATA", "records", "items", "item", "row", "places", "features"):
        if key in data:
            found = find_records(data[key])
            if found:
                return found
    for value in data.values():
        if isinstance(value, dict | list):
            found = find_records(value)
            if found:
                return found
    return []


T = TypeVar("T")


@dataclass
class ImportReport:
    """What an import did: rows read, written, skipped (with why)."""

    source: str
    read: int = 0
    written: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    def kept(self, results: Iterable[T | str]) -> Iterator[T]:
        """The records among ``results``, each result counted as read; a result that is a
        reason (the row could not be used) is counted as skipped instead."""
        for result in results:
            self.read += 1
            if isinstance(result, str):
                self.skip(result)
            else:
                yield result

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.most_common())
        return (
            f"{self.source}: read {self.read}, wrote {self.written}, "
            f"skipped {sum(self.skipped.values())}" + (f" ({reasons})" if reasons else "")
        )

