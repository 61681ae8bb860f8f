"""Regenerate the shipped SAMPLE drop-off points for Seoul (``agents/data/locations``).

The samples are synthetic: district names, real road names and plausible coordinates around
each district's centre, but no row is a real bin or shop (phone numbers are deliberately
invalid: Korean local numbers never start with 0). They exist so every feature works offline;
import the real datasets for real use. Deterministic: the same seed writes the same files.

    python -m infra.importers.make_samples
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from pathlib import Path

import agents

SAMPLE_DIR = Path(agents.__file__).parent / "data" / "locations"
REFERENCE_DATE = "2025-06-30"

# district → (centre lat, centre lon, roads, 행정동)
DISTRICTS: dict[str, tuple[float, float, tuple[str, ...], tuple[str, ...]]] = {
    "종로구": (37.5735, 126.9790, ("종로", "율곡로", "대학로", "자하문로"),
             ("청운효자동", "사직동", "삼청동", "혜화동", "이화동")),
    "중구": (37.5641, 126.9979, ("세종대로", "을지로", "퇴계로", "다산로"),
            ("소공동", "명동", "필동", "신당동", "황학동")),
    "용산구": (37.5324, 126.9905, ("한강대로", "이태원로", "녹사평대로", "원효로"),
             ("후암동", "이태원1동", "한남동", "이촌1동", "효창동")),
    "성동구": (37.5634, 127.0369, ("왕십리로", "성수일로", "아차산로", "고산자로"),
             ("왕십리도선동", "행당1동", "금호1가동", "옥수동", "성수1가1동")),
    "광진구": (37.5385, 127.0823, ("능동로", "자양로", "광나루로", "천호대로"),
             ("화양동", "군자동", "중곡1동", "자양1동", "구의1동")),
    "동대문구": (37.5744, 127.0396, ("왕산로", "천호대로", "답십리로", "망우로"),
               ("회기동", "휘경1동", "전농1동", "답십리1동", "장안1동")),
    "중랑구": (37.6066, 127.0927, ("망우로", "면목로", "동일로", "용마산로"),
             ("면목본동", "상봉1동", "중화1동", "묵1동", "망우본동")),
    "성북구": (37.5894, 127.0167, ("보문로", "동소문로", "정릉로", "화랑로"),
             ("성북동", "돈암1동", "안암동", "정릉1동", "길음1동")),
    "강북구": (37.6396, 127.0257, ("도봉로", "삼양로", "솔매로", "한천로"),
             ("미아동", "번1동", "수유1동", "우이동", "인수동")),
    "도봉구": (37.6688, 127.0471, ("도봉로", "방학로", "마들로", "시루봉로"),
             ("쌍문1동", "방학1동", "창1동", "도봉1동")),
    "노원구": (37.6542, 127.0568, ("동일로", "노원로", "상계로", "한글비석로"),
             ("월계1동", "공릉1동", "하계1동", "중계본동", "상계1동")),
    "은평구": (37.6027, 126.9291, ("통일로", "은평로", "연서로", "진흥로"),
             ("녹번동", "불광1동", "갈현1동", "응암1동", "진관동")),
    "서대문구": (37.5791, 126.9368, ("연희로", "신촌로", "통일로", "증가로"),
               ("충현동", "신촌동", "연희동", "홍제1동", "남가좌1동")),
    "마포구": (37.5663, 126.9019, ("월드컵로", "양화로", "마포대로", "독막로"),
             ("아현동", "공덕동", "서교동", "합정동", "망원1동", "상암동")),
    "양천구": (37.5170, 126.8665, ("목동로", "신월로", "오목로", "목동동로"),
             ("목1동", "신월1동", "신정1동", "목5동")),
    "강서구": (37.5509, 126.8495, ("공항대로", "화곡로", "강서로", "양천로"),
             ("염창동", "등촌1동", "화곡1동", "가양1동", "발산1동")),
    "구로구": (37.4954, 126.8874, ("구로중앙로", "디지털로", "경인로", "개봉로"),
             ("신도림동", "구로1동", "고척1동", "개봉1동", "오류1동")),
    "금천구": (37.4569, 126.8955, ("시흥대로", "독산로", "가산디지털1로", "벚꽃로"),
             ("가산동", "독산1동", "시흥1동")),
    "영등포구": (37.5264, 126.8962, ("영등포로", "여의대로", "당산로", "도림로"),
               ("여의동", "당산1동", "영등포동", "문래동", "신길1동")),
    "동작구": (37.5124, 126.9393, ("상도로", "노량진로", "사당로", "장승배기로"),
             ("노량진1동", "상도1동", "흑석동", "사당1동", "대방동")),
    "관악구": (37.4784, 126.9516, ("관악로", "남부순환로", "봉천로", "신림로"),
             ("보라매동", "청림동", "행운동", "낙성대동", "신림동")),
    "서초구": (37.4837, 127.0324, ("서초대로", "반포대로", "강남대로", "방배로"),
             ("서초1동", "잠원동", "반포1동", "방배1동", "양재1동")),
    "강남구": (37.5172, 127.0473, ("테헤란로", "강남대로", "논현로", "압구정로"),
             ("신사동", "논현1동", "압구정동", "청담동", "삼성1동", "역삼1동", "대치1동")),
    "송파구": (37.5145, 127.1059, ("올림픽로", "송파대로", "백제고분로", "오금로"),
             ("풍납1동", "잠실본동", "석촌동", "송파1동", "가락본동", "문정1동")),
    "강동구": (37.5301, 127.1238, ("천호대로", "양재대로", "성내로", "고덕로"),
             ("강일동", "상일동", "명일1동", "고덕1동", "암사1동", "천호1동")),
}

BIN_SPOTS = ("주민센터", "주민센터 민원실 앞", "아파트 관리사무소 앞", "어린이공원 입구",
             "작은도서관 앞", "경로당 앞", "공영주차장 입구")
APARTMENTS = ("푸른마을", "한빛", "새솔", "늘봄", "햇살", "은행나무", "솔빛", "해오름")


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def place(self) -> tuple[str, float, float, str, str, str]:
        """(district, lat, lon, road address, lot address, dong) near a district centre."""
        district = self.rng.choice(list(DISTRICTS))
        lat0, lon0, roads, dongs = DISTRICTS[district]
        lat = round(lat0 + self.rng.gauss(0, 0.010), 7)
        lon = round(lon0 + self.rng.gauss(0, 0.013), 7)
        dong = self.rng.choice(dongs)
        legal = re.sub(r"(본동|[0-9·]+가?[0-9]*동)$", "동", dong)
        road = f"서울특별시 {district} {self.rng.choice(roads)} {self.rng.randint(1, 320)}"
        lot = f"서울특별시 {district} {legal} {self.rng.randint(1, 900)}-{self.rng.randint(1, 40)}"
        return district, lat, lon, road, lot, dong

    def phone(self) -> str:
        return f"02-0{self.rng.randint(10, 99)}-{self.rng.randint(1000, 9999)}"

    def bin_name(self, dong: str) -> str:
        spot = self.rng.choice(BIN_SPOTS)
        if spot.startswith("아파트"):
            return f"{self.rng.choice(APARTMENTS)}아파트 {spot.removeprefix('아파트 ')}"
        return f"{dong} {spot}" if not spot.startswith("주민센터") else f"{dong}{spot}"


def _csv(headers: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


def battery_lamp(gen: _Gen, n: int) -> str:
    """Standard-data headers, UTF-8 with BOM (as the portal serves it)."""
    headers = ["설치장소명", "소재지도로명주소", "소재지지번주소", "위도", "경도", "설치위치상세",
               "수거품목", "관리기관명", "관리기관전화번호", "데이터기준일자", "제공기관코드",
               "제공기관명"]
    rows = []
    for _ in range(n):
        district, lat, lon, road, lot, dong = gen.place()
        items = gen.rng.choice(["폐건전지, 폐형광등", "폐건전지, 폐형광등", "폐건전지", "폐형광등"])
        rows.append([gen.bin_name(dong), road, lot, f"{lat}", f"{lon}",
                     gen.rng.choice(["1층 출입구 옆", "정문 왼편", "분리수거장 내", ""]), items,
                     f"서울특별시 {district}", gen.phone(), REFERENCE_DATE, "SAMPLE", "SAMPLE"])
    return _csv(headers, rows)


def clothing(gen: _Gen, n: int) -> str:
    """A municipal re-publication's variant headers (written as CP949 by ``main``)."""
    headers = ["연번", "관리번호", "설치장소", "도로명주소", "지번주소", "위도", "경도", "관리기관",
               "전화번호", "데이터기준일자"]
    rows = []
    for i in range(n):
        district, lat, lon, road, lot, dong = gen.place()
        rows.append([str(i + 1), f"SAMPLE-CL-{i + 1:04d}", gen.bin_name(dong), road, lot,
                     f"{lat}", f"{lon}", f"서울특별시 {district}", gen.phone(),
                     REFERENCE_DATE.replace("-", ".")])
    return _csv(headers, rows)


def medicine(gen: _Gen, n: int) -> str:
    headers = ["설치장소명", "소재지도로명주소", "소재지지번주소", "위도", "경도", "관리기관명",
               "관리기관전화번호", "데이터기준일자", "제공기관코드", "제공기관명"]
    rows = []
    for _ in range(n):
        district, lat, lon, road, lot, dong = gen.place()
        name = gen.rng.choice([f"{dong}주민센터", f"{district}보건소", f"{dong} 보건지소"])
        rows.append([name, road, lot, f"{lat}", f"{lon}", f"서울특별시 {district}", gen.phone(),
                     REFERENCE_DATE, "SAMPLE", "SAMPLE"])
    return _csv(headers, rows)


def places(gen: _Gen, n: int, kind: str) -> str:
    """odcloud-style JSON: {"sample": true, "currentCount", "data": [...]} with Korean keys."""
    data = []
    for i in range(n):
        district, lat, lon, road, _lot, dong = gen.place()
        if kind == "zero_waste":
            name = gen.rng.choice([f"리필상점 {dong}점", f"제로웨이스트샵 {dong}",
                                   f"{dong} 다시채움 상점"])
            hours = gen.rng.choice(["10:00~19:00", "11:00~20:00", "10:30~18:30"])
            items = gen.rng.choice([["종이팩", "플라스틱류"], ["종이팩", "플라스틱류", "전지"],
                                    ["종이팩"]])
        else:
            name = f"{district} 재활용센터" if i < len(DISTRICTS) else f"{dong} 자원순환센터"
            hours = "09:00~18:00"
            items = ["대형폐기물", "전기전자제품"]
        data.append({"id": f"SAMPLE-{kind}-{i + 1:03d}", "상호명": name, "도로명주소": road,
                     "위도": lat, "경도": lon, "전화번호": gen.phone(), "운영시간": hours,
                     "수거품목": items})
    return json.dumps(
        {"sample": True, "description": "SAMPLE DATA — synthetic, not real shops",
         "currentCount": n, "data": data},
        ensure_ascii=False, indent=1,
    )


def main() -> None:
    gen = _Gen(2025)
    SAMPLE_DIR.mkdir(parents=True, exist_ok=True)
    (SAMPLE_DIR / "sample_seoul_battery_lamp_bins.csv").write_bytes(
        battery_lamp(gen, 160).encode("utf-8-sig"))
    (SAMPLE_DIR / "sample_seoul_clothing_bins.csv").write_bytes(
        clothing(gen, 150).encode("cp949"))
    (SAMPLE_DIR / "sample_seoul_medicine_bins.csv").write_bytes(
        medicine(gen, 80).encode("utf-8-sig"))
    (SAMPLE_DIR / "sample_seoul_zero_waste_shops.json").write_text(
        places(gen, 30, "zero_waste") + "\n", encoding="utf-8")
    (SAMPLE_DIR / "sample_seoul_recycling_centers.json").write_text(
        places(gen, 20, "recycling_center") + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
