"""``recyclable_price``: this month's survey prices of recyclables (won per kg)."""

from __future__ import annotations

from agents.chat.korean import won
from agents.chat.subagents.base import Finding, SubTask, not_found
from agents.chat.subagents.places import haversine_m
from agents.chat.subagents.recyclable_price_data import (
    REGIONS,
    PriceRow,
    RecyclablePrices,
    previous_month,
)

STAGE = "recyclable_price"
MAX_ITEMS = 6

# what users write → survey items (substrings of item names) or a whole category ("cat:…")
ITEM_CUES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("신문",), ("신문지",)),
    (("박스", "골판지", "상자"), ("골판지",)),
    (("종이팩", "우유팩"), ("종이팩",)),
    (("폐지", "종이"), ("cat:paper",)),
    (("페트", "pet"), ("무색 PET", "유색 PET")),
    (("플라스틱",), ("무색 PET", "PE 압축", "PP 압축", "PS 압축", "혼합 플라스틱")),
    (("유리",), ("cat:glass",)),
    (("알루미늄",), ("알루미늄캔",)),
    (("캔",), ("철캔", "알루미늄캔")),
    (("구리", "동선", "전선"), ("구리",)),
    (("스텐", "스테인리스"), ("스테인리스",)),
    (("고철", "철", "쇠"), ("고철 중량", "고철 경량")),
    (("타이어",), ("cat:tire",)),
)
HEADLINE = ("신문지", "골판지", "무색 PET", "고철 중량", "알루미늄캔")
REGION_CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("capital", ("서울", "경기", "인천", "수도권")),
    ("gangwon", ("강원", "춘천", "원주", "강릉")),
    ("chungbuk", ("충북", "충청북도", "청주", "충주")),
    ("chungnam", ("충남", "충청남도", "대전", "세종", "천안")),
    ("jeonbuk", ("전북", "전라북도", "전주", "익산")),
    ("jeonnam", ("전남", "전라남도", "광주", "목포", "여수")),
    ("gyeongbuk", ("경북", "경상북도", "대구", "포항", "구미")),
    ("gyeongnam", ("경남", "경상남도", "부산", "울산", "창원", "김해")),
)
# rough centres of the survey regions, to place a user who names none
CENTRES = {
    "capital": (37.5, 127.0),
    "gangwon": (37.8, 128.3),
    "chungbuk": (36.8, 127.7),
    "chungnam": (36.5, 126.9),
    "jeonbuk": (35.7, 127.1),
    "jeonnam": (34.9, 126.9),
    "gyeongbuk": (36.3, 128.7),
    "gyeongnam": (35.3, 128.5),
}


def wanted_items(text: str) -> list[str]:
    """Item patterns the text asks about (first matching cue group wins per word)."""
    key = "".join(text.lower().split())
    found: list[str] = []
    for words, items in ITEM_CUES:
        if any(w in key for w in words):
            found.extend(i for i in items if i not in found)
    return found


def region_for(task: SubTask) -> str:
    """The survey region named in the text, else the one nearest the user, else national."""
    key = "".join(f"{task.query} {task.message}".split())
    for code, words in REGION_CUES:
        if any(w in key for w in words):
            return code
    if task.location is not None:
        lat, lon = task.location.latitude, task.location.longitude
        return min(CENTRES, key=lambda c: haversine_m(lat, lon, *CENTRES[c]))
    return "national"


def _select(rows: list[PriceRow], patterns: list[str], region: str) -> list[PriceRow]:
    chosen = []
    for pattern in patterns:
        for row in rows:
            if row.region != region or row in chosen:
                continue
            if pattern.startswith("cat:"):
                hit = row.category == pattern[4:]
            else:
                hit = pattern.replace(" ", "").lower() in row.item.replace(" ", "").lower()
            if hit:
                chosen.append(row)
    return chosen[:MAX_ITEMS]


def _line(row: PriceRow, before: PriceRow | None) -> str:
    text = f"- {row.item}: {won(row.price)}/kg"
    if before is not None and before.price > 0:
        change = (row.price - before.price) / before.price * 100
        trend = "보합" if abs(change) < 0.5 else f"{'+' if change > 0 else ''}{change:.1f}%"
        text += f" (지난달 {won(before.price)}, {trend})"
    return text


async def run(task: SubTask, prices: RecyclablePrices) -> Finding:
    """The latest survey prices of the items asked about in the user's region."""
    rows = await prices.survey()
    if not rows:
        return not_found(STAGE, reason="no_survey")
    month = rows[0].month
    patterns = wanted_items(task.query) or wanted_items(task.message) or list(HEADLINE)
    region = region_for(task)
    chosen = _select(rows, patterns, region) or _select(rows, patterns, "national")
    if not chosen:
        return not_found(STAGE, month=month, region=region)
    region = chosen[0].region
    before_rows = await prices.survey(previous_month(month))
    before = {(r.region, r.item): r for r in before_rows}
    sample = any(r.source == "sample" for r in chosen)
    year, mon = month.split("-")
    head = (
        f"{year}년 {int(mon)}월 재활용가능자원 가격조사 기준 {REGIONS[region]} 평균 가격이에요"
        + (" (샘플 데이터)" if sample else "")
        + ":"
    )
    lines = [head, *(_line(r, before.get((r.region, r.item))) for r in chosen)]
    lines.append(
        "고물상·재활용업체의 실제 매입가는 양과 상태(이물질, 수분)에 따라 이보다 낮을 수 있어요."
    )
    return Finding(
        stage=STAGE,
        found=True,
        title=f"{REGIONS[region]} 재활용품 시세",
        text="\n".join(lines),
        sources=[
            {
                "type": "dataset",
                "name": "한국환경공단 재활용가능자원 가격조사" + (" (샘플)" if sample else ""),
                "month": month,
                "region": region,
            }
        ],
        detail={"month": month, "region": region, "items": [r.item for r in chosen]},
    )
