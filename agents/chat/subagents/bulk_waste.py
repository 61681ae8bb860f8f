"""``bulk_waste``: what it costs to have furniture and other bulky items collected."""

from __future__ import annotations

import re
from collections import defaultdict

from agents.chat.korean import won
from agents.chat.subagents.base import Finding, SubTask, not_found
from agents.chat.subagents.bulk_waste_data import BulkWasteFee, BulkWasteFees

STAGE = "bulk_waste"
MAX_REGIONS = 3

# canonical item name (as in the dataset) → ways people write it
ITEMS: dict[str, tuple[str, ...]] = {
    "소파": ("소파", "쇼파", "쇼퍄", "sofa"),
    "매트리스": ("매트리스", "메트리스", "매트리즈"),
    "침대": ("침대", "침대틀", "침대프레임"),
    "장롱": ("장롱", "장농", "옷장"),
    "서랍장": ("서랍장",),
    "책장": ("책장", "책꽂이"),
    "책상": ("책상",),
    "식탁": ("식탁",),
    "의자": ("의자",),
    "화장대": ("화장대",),
    "피아노": ("피아노",),
    "자전거": ("자전거",),
    "유모차": ("유모차",),
    "카펫": ("카펫", "카페트", "러그"),
    "냉장고": ("냉장고", "김치냉장고"),
    "세탁기": ("세탁기",),
    "에어컨": ("에어컨",),
    "텔레비전": ("텔레비전", "티비", "tv"),
    "전자레인지": ("전자레인지",),
}
APPLIANCES = frozenset({"냉장고", "세탁기", "에어컨", "텔레비전", "전자레인지"})
FREE_PICKUP = (
    "냉장고·세탁기 같은 폐가전은 폐가전 무상 방문수거(1599-0903)로 무료로 버릴 수 있어요 "
    "(대형은 1개도, 소형은 5개 이상 모아서)."
)
HOW_TO = "구청 누리집·앱이나 주민센터에서 신고하고 수수료를 낸 뒤, 받은 스티커(필증)를 붙여 정한 날 내놓으세요."

_PROVINCES = (
    "서울",
    "부산",
    "대구",
    "인천",
    "광주",
    "대전",
    "울산",
    "세종",
    "경기",
    "강원",
    "충북",
    "충남",
    "전북",
    "전남",
    "경북",
    "경남",
    "제주",
    "충청북도",
    "충청남도",
    "전라북도",
    "전라남도",
    "경상북도",
    "경상남도",
    "경기도",
    "강원도",
    "제주도",
)
_PARTICLES = re.compile(r"(에서는|에서|에는|에|은|는|이|가|의|도|쪽|에선)$")
_DISTRICT = re.compile(r"^[가-힣]{1,4}(구|군|시)$")
_NOT_PLACES = frozenset(
    {
        "가구",
        "도구",
        "기구",
        "친구",
        "요구",
        "연구",
        "입구",
        "출구",
        "다시",
        "혹시",
        "역시",
        "당시",
        "수시",
        "항시",
        "잠시",
        "가시",
        "무시",
        "표시",
        "지시",
        "단군",
        "아군",
    }
)


def find_item(text: str) -> str | None:
    """The bulky item the text names (canonical name), longest alias first."""
    key = "".join(text.lower().split())
    best: tuple[int, str] | None = None
    for name, aliases in ITEMS.items():
        for alias in aliases:
            if alias in key and (best is None or len(alias) > best[0]):
                best = (len(alias), name)
    return best[1] if best else None


def find_regions(text: str) -> list[str]:
    """Region words of the text ("서울", "강남구", "수원시"), particles removed."""
    found: list[str] = []
    for word in re.findall(r"[가-힣]+", text):
        bare = _PARTICLES.sub("", word) or word
        if bare in _PROVINCES or (
            _DISTRICT.match(bare)
            and bare not in _NOT_PLACES
            and (bare.endswith("구") or len(bare) >= 3)
        ):
            found.append(
                bare.removesuffix("도") if bare.endswith("도") and len(bare) == 3 else bare
            )
    return list(dict.fromkeys(found))


def _fee_text(fee: BulkWasteFee) -> str:
    price = won(fee.fee) if fee.paid and fee.fee > 0 else "무료"
    return f"{fee.spec} {price}" if fee.spec else price


async def run(task: SubTask, fees: BulkWasteFees) -> Finding:
    """Fees for the item named, for the region named (else a range over the regions known)."""
    item = find_item(task.query) or find_item(task.message) or find_item(task.item_hint or "")
    if item is None:
        return not_found(STAGE, reason="no_item")
    regions = find_regions(task.query) or find_regions(task.message)
    rows = await fees.fees(item, regions=regions)
    if not rows and regions:
        rows = await fees.fees(item)  # the region is not in the data: show others, say so
        regions_missing = True
    else:
        regions_missing = False
    detail = {"item": item, "regions": regions, "rows": len(rows)}
    if not rows:
        extra = [FREE_PICKUP] if item in APPLIANCES else []
        if extra:
            return Finding(
                stage=STAGE, found=True, title=f"{item} 버리는 법", text=extra[0], detail=detail
            )
        return not_found(STAGE, **detail)

    by_region: dict[str, list[BulkWasteFee]] = defaultdict(list)
    for row in rows:
        by_region[row.region].append(row)
    sample = any(r.source == "sample" for r in rows)
    basis = " (샘플 데이터 기준)" if sample else ""
    lines: list[str] = []
    if regions and not regions_missing and len(by_region) == 1:
        region, region_rows = next(iter(by_region.items()))
        lines.append(f"{region}의 {item} 대형폐기물 수수료예요{basis}:")
        lines += [f"- {_fee_text(r)}" for r in region_rows]
    else:
        if regions_missing:
            lines.append(
                f"{' '.join(regions)}의 {item} 수수료 정보는 없어서 다른 지역 예시를 보여 드려요."
            )
        paid = [r.fee for r in rows if r.paid and r.fee > 0]
        if paid:
            low, high = won(min(paid)), won(max(paid))
            span = low if low == high else f"{low}~{high}"
            lines.append(f"{item} 대형폐기물 수수료는 지역과 크기에 따라 {span}이에요{basis}.")
        else:
            lines.append(f"{item} 대형폐기물 수수료 예시예요{basis}.")
        for region, region_rows in list(by_region.items())[:MAX_REGIONS]:
            lines.append(f"- {region}: " + " · ".join(_fee_text(r) for r in region_rows))
        lines.append("사는 시군구를 알려 주시면 그 지역 금액을 알려 드릴게요.")
    lines.append(HOW_TO)
    if item in APPLIANCES:
        lines.append(FREE_PICKUP)
    sources = [
        {
            "type": "dataset",
            "name": "전국대형폐기물수거수수료정보 표준데이터" + (" (샘플)" if sample else ""),
            "region": region,
            "agency": region_rows[0].agency,
        }
        for region, region_rows in list(by_region.items())[:MAX_REGIONS]
    ]
    return Finding(
        stage=STAGE,
        found=True,
        title=f"{item} 대형폐기물 수수료",
        text="\n".join(lines),
        sources=sources,
        detail=detail,
    )
