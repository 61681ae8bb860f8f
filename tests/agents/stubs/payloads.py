"""Bodies of the live APIs the chat's adapters call, as the real services send them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def kakao_place(
    pid: str, name: str, lat: float, lon: float, distance_m: int | None, **extra: Any
) -> dict[str, Any]:
    """A Kakao Local keyword-search document (coordinates and distance are strings)."""
    doc: dict[str, Any] = {
        "id": pid,
        "place_name": name,
        "category_name": "사회,공공기관 > 행정기관",
        "category_group_code": "PO3",
        "phone": "02-000-0000",
        "address_name": "서울 중구 태평로1가 31",
        "road_address_name": "서울 중구 세종대로 110",
        "x": f"{lon}",
        "y": f"{lat}",
        "place_url": f"http://place.map.kakao.com/{pid}",
        "distance": "" if distance_m is None else str(distance_m),
    }
    doc.update(extra)
    return doc


def kakao_reply(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "meta": {"total_count": len(documents), "pageable_count": len(documents), "is_end": True},
        "documents": list(documents),
    }


def kakao_web(title: str, url: str, contents: str) -> dict[str, Any]:
    return {
        "title": title,
        "url": url,
        "contents": contents,
        "datetime": "2026-10-01T09:00:00.000+09:00",
    }


def datagokr(
    items: Sequence[Mapping[str, Any]], *, code: str = "00", wrap: bool = False
) -> dict[str, Any]:
    """A data.go.kr reply; ``wrap`` puts the items under ``items.item`` as older APIs do."""
    body_items: Any = {"item": list(items)} if wrap else list(items)
    return {
        "response": {
            "header": {
                "resultCode": code,
                "resultMsg": "NORMAL_SERVICE" if code == "00" else "ERROR",
            },
            "body": {
                "items": body_items,
                "numOfRows": str(len(items)),
                "pageNo": "1",
                "totalCount": str(len(items)),
            },
        }
    }


def kma_items(
    values: Mapping[str, str], *, base_date: str, base_time: str, nx: int, ny: int
) -> list[dict[str, Any]]:
    """초단기실황 items: one per category, observation values as strings."""
    return [
        {
            "baseDate": base_date,
            "baseTime": base_time,
            "category": c,
            "nx": nx,
            "ny": ny,
            "obsrValue": v,
        }
        for c, v in values.items()
    ]
