"""The reply envelope of 공공데이터포털 (data.go.kr) open APIs, shared by the dataset adapters.

``{"response": {"header": {"resultCode": "00", "resultMsg": ...}, "body": {"items": [...] |
{"item": [...]}, "totalCount": "…"}}}``. ``03`` (no data) is an empty result; ``22`` (daily
quota used up) is transient; any other code is a bad reply.
"""

from __future__ import annotations

from typing import Any

from agents.chat.errors import SourceBadData, SourceUnavailable
from agents.chat.http import as_dict, as_list

NO_DATA = "03"
QUOTA_EXCEEDED = "22"


def reply_items(body: Any, source: str) -> list[dict[str, Any]]:
    """The item objects of a data.go.kr JSON reply."""
    response = as_dict(as_dict(body, source).get("response"), f"{source} response")
    header = as_dict(response.get("header", {}), f"{source} header")
    code = str(header.get("resultCode", "00"))
    if code == NO_DATA:
        return []
    if code == QUOTA_EXCEEDED:
        raise SourceUnavailable(f"{source}: request quota exceeded")
    if code not in ("00", "0", "0000"):
        raise SourceBadData(f"{source}: resultCode {code} {header.get('resultMsg', '')}".strip())
    payload = as_dict(response.get("body", {}), f"{source} body")
    items = payload.get("items")
    if isinstance(items, dict) and "item" in items:
        items = items["item"]
    return [as_dict(i, f"{source} item") for i in as_list(items, f"{source} items")]


def number(value: Any) -> float:
    """A number sent as a string ("8,000", "8000원", " 12.5 "); ``ValueError`` if none."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).replace(",", "").replace("원", "").strip()
    if not text:
        raise ValueError("empty number")
    return float(text)
