"""What a drop-off point is (``store_category``) and what it takes (``pickup_categories``).

Pickup categories are the knowledge base's middle categories (전지, 조명제품, 의류및원단, …)
plus 폐의약품 and 대형폐기물, so a scan's classification maps straight onto a filter. People and
clients say the same thing many ways (폐건전지, 배터리, battery); ``normalize_*`` maps the
common ones and passes anything else through unchanged (an unknown filter matches nothing
rather than failing the request).
"""

from __future__ import annotations

COLLECTION_BIN = "collection_bin"
ZERO_WASTE_SHOP = "zero_waste_shop"
RECYCLING_CENTER = "recycling_center"
STORE_CATEGORIES = (COLLECTION_BIN, ZERO_WASTE_SHOP, RECYCLING_CENTER)

STORE_LABELS = {
    COLLECTION_BIN: "수거함",
    ZERO_WASTE_SHOP: "제로웨이스트샵",
    RECYCLING_CENTER: "재활용센터",
}

BATTERY = "전지"
LAMP = "조명제품"
CLOTHING = "의류및원단"
MEDICINE = "폐의약품"

PICKUP_CATEGORIES = (
    BATTERY, LAMP, CLOTHING, MEDICINE,
    "종이", "종이팩", "무색페트병", "플라스틱류", "비닐류", "발포합성수지", "유리병", "금속류",
    "전기전자제품", "대형폐기물",
)

_STORE_ALIASES = {
    "bin": COLLECTION_BIN, "bins": COLLECTION_BIN, "collection": COLLECTION_BIN,
    "수거함": COLLECTION_BIN,
    "zerowaste": ZERO_WASTE_SHOP, "zero_waste": ZERO_WASTE_SHOP, "shop": ZERO_WASTE_SHOP,
    "refill": ZERO_WASTE_SHOP, "refill_station": ZERO_WASTE_SHOP, "zero_waste_shop": ZERO_WASTE_SHOP,
    "제로웨이스트": ZERO_WASTE_SHOP, "제로웨이스트샵": ZERO_WASTE_SHOP,
    "리필샵": ZERO_WASTE_SHOP,
    "center": RECYCLING_CENTER, "recycle_center": RECYCLING_CENTER,
    "recycling_center": RECYCLING_CENTER,
    "재활용센터": RECYCLING_CENTER, "자원순환센터": RECYCLING_CENTER,
}

_PICKUP_ALIASES = {
    BATTERY: ("폐건전지", "건전지", "배터리", "보조배터리", "battery", "batteries"),
    LAMP: ("폐형광등", "형광등", "전구", "lamp", "lamps", "fluorescent"),
    CLOTHING: ("의류", "헌옷", "옷", "원단", "신발", "clothing", "clothes"),
    MEDICINE: ("의약품", "약", "알약", "물약", "폐의약품", "medicine", "medicines"),
    "종이팩": ("우유팩", "멸균팩", "paper_pack"),
    "무색페트병": ("페트병", "투명페트병", "pet"),
    "플라스틱류": ("플라스틱", "병뚜껑", "plastic"),
    "금속류": ("캔", "고철", "metal", "can"),
    "유리병": ("유리", "glass"),
    "종이": ("폐지", "paper"),
    "비닐류": ("비닐", "vinyl"),
    "발포합성수지": ("스티로폼", "styrofoam"),
    "전기전자제품": ("소형가전", "폐가전", "가전", "electronics"),
    "대형폐기물": ("가구", "bulky"),
}
_PICKUP_LOOKUP = {
    alias.lower(): canonical for canonical, aliases in _PICKUP_ALIASES.items() for alias in aliases
}
_NO_FILTER = {"", "all", "전체", "any", "*"}


def normalize_store_category(value: str | None) -> str | None:
    """The canonical store category for ``value``; None means "no filter"."""
    if value is None or value.strip().lower() in _NO_FILTER:
        return None
    key = value.strip().lower().replace("-", "_").replace(" ", "")
    return _STORE_ALIASES.get(key, key)


def normalize_pickup_category(value: str | None) -> str | None:
    """The canonical pickup category for ``value`` (폐건전지 → 전지); None means "no filter"."""
    if value is None or value.strip().lower() in _NO_FILTER:
        return None
    text = value.strip()
    if text in PICKUP_CATEGORIES:
        return text
    return _PICKUP_LOOKUP.get(text.lower().replace(" ", ""), text)


def pickup_categories_in(text: str) -> tuple[str, ...]:
    """Every pickup category named in free text such as '폐건전지, 폐형광등' (dataset item
    columns), in first-mention order. Longer names win ('종이팩' is not also '종이');
    one-letter aliases ('약', '옷') are ignored here: they occur inside unrelated words."""
    lowered = text.lower()
    covered = [False] * len(lowered)
    first: dict[str, int] = {}
    for name, canonical in _NAMES_LONGEST_FIRST:
        start = lowered.find(name)
        while start >= 0:
            end = start + len(name)
            if not any(covered[start:end]):
                covered[start:end] = [True] * len(name)
                first[canonical] = min(first.get(canonical, start), start)
            start = lowered.find(name, end)
    return tuple(sorted(first, key=first.__getitem__))


_NAMES_LONGEST_FIRST = sorted(
    (
        (name.lower(), canonical)
        for canonical in PICKUP_CATEGORIES
        for name in (canonical, *_PICKUP_ALIASES.get(canonical, ()))
        if len(name) > 1
    ),
    key=lambda pair: -len(pair[0]),
)
