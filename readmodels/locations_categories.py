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
    # the PWA's keys (its other store categories are kinds of place we do not list)
    "public_dropbox": COLLECTION_BIN, "refill_zero": ZERO_WASTE_SHOP,
    "upcycle_recycle": RECYCLING_CENTER,
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


# -- The Eco² PWA's vocabulary ------------------------------------------------------------
# The PWA filters and labels points with its own keys (API.md, "Locations and info"); the read
# model keeps ours (Korean pickup names for our own page). These tables translate both ways.

PWA_STORE_CATEGORY = {
    COLLECTION_BIN: "public_dropbox",
    ZERO_WASTE_SHOP: "refill_zero",
    RECYCLING_CENTER: "upcycle_recycle",
}
PWA_STORE_CATEGORIES = (
    "refill_zero", "cafe_bakery", "vegan_dining", "upcycle_recycle", "book_workshop",
    "market_mart", "lodging", "public_dropbox", "general",
)
PWA_PICKUP_CATEGORY = {
    "무색페트병": "clear_pet",
    "플라스틱류": "plastic",
    "금속류": "can",
    "종이": "paper",
    "종이팩": "paper",
    "유리병": "glass",
    "의류및원단": "textile",
    BATTERY: "electronics",
    LAMP: "electronics",
    "전기전자제품": "electronics",
}
PWA_PICKUP_CATEGORIES = (
    "clear_pet", "colored_pet", "can", "paper", "plastic", "glass", "textile", "electronics",
    "general",
)
# Coloured PET bottles go out with the plastics (only clear ones are collected apart).
_PWA_PICKUP_EXTRA = {"colored_pet": ("플라스틱류",)}

# Our dataset keys (``locations.source``) → the PWA's ``source``.
ZERO_WASTE_SOURCE = "zero_waste_shops"
PUBLIC_SOURCES = ("clothing_bins", "battery_lamp_bins", "medicine_bins", "recycling_centers")


def pwa_pickup_categories(pickups: tuple[str, ...]) -> list[str]:
    """Our pickup categories in the PWA's words, first-mention order, without repeats
    (anything it has no word for is ``general``)."""
    return list(dict.fromkeys(PWA_PICKUP_CATEGORY.get(p, "general") for p in pickups))


def pwa_store_category(store_category: str) -> str:
    return PWA_STORE_CATEGORY.get(store_category, "general")


def pwa_source(source: str) -> str:
    """``keco`` for public collection points, ``zerowaste`` for zero-waste shops, ``kakao``
    for places found through Kakao."""
    if source == ZERO_WASTE_SOURCE:
        return "zerowaste"
    if "kakao" in source:
        return "kakao"
    return "keco"


def pickup_filter(value: str | None) -> tuple[str, ...] | None:
    """The stored pickup categories a ``pickup_category`` filter matches (any of them): a PWA
    key (``paper`` → 종이, 종이팩; ``general`` → what has no key of its own), or one of ours
    and its aliases. None means no filter."""
    key = (value or "").strip().lower()
    if key in PWA_PICKUP_CATEGORIES:
        ours = tuple(k for k, v in PWA_PICKUP_CATEGORY.items() if v == key)
        if key == "general":
            ours = tuple(p for p in PICKUP_CATEGORIES if p not in PWA_PICKUP_CATEGORY)
        return ours + _PWA_PICKUP_EXTRA.get(key, ())
    single = normalize_pickup_category(value)
    return None if single is None else (single,)
