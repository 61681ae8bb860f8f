"""Keyword hints per intent (DOMAIN.md) and how hits are counted.

The table for eight intents is DOMAIN.md's; ``weather`` and ``web_search`` have no row there, so
their hints are ours. The news/policy words sit in DOMAIN's ``general`` row and also in
``web_search`` (asking for the latest policy is a search), so both get the same boost and the
similarity model decides between them.
"""

from __future__ import annotations

from collections.abc import Mapping

from agents.chat.intents.model import Intent

_NEWS_WORDS = ("최신", "최근", "뉴스", "정책", "규제", "발표", "공지")

# fmt: off
KEYWORDS: Mapping[Intent, tuple[str, ...]] = {
    Intent.WASTE: ("버려", "버리", "분리", "재활용", "쓰레기", "폐기"),
    Intent.CHARACTER: ("캐릭터", "얻", "모아", "컬렉션"),
    Intent.LOCATION: ("어디", "근처", "가까", "위치", "샵", "제로웨이스트", "재활용센터"),
    Intent.BULK_WASTE: (
        "대형폐기물", "대형", "소파", "냉장고", "세탁기", "가구", "수수료", "신청", "가전",
        "매트리스", "침대",
    ),
    Intent.RECYCLABLE_PRICE: ("시세", "가격", "얼마", "고철", "폐지", "매입", "kg", "킬로"),
    Intent.COLLECTION_POINT: (
        "수거함", "의류수거", "폐건전지", "폐형광등", "형광등", "건전지", "의류",
    ),
    Intent.IMAGE_GENERATION: ("이미지", "그림", "인포그래픽", "시각", "보여줘", "그려"),
    # Bare "비"/"눈" would fire inside 비닐/눈금, so rain and snow need their verb.
    Intent.WEATHER: (
        "날씨", "기온", "온도", "우산", "미세먼지", "강수", "비가", "비 와", "비와", "비 오",
        "비오", "눈 와", "눈이 와", "눈 오", "눈오", "일기예보", "예보", "폭염", "장마", "태풍",
        "추워", "더워", "습도",
    ),
    Intent.WEB_SEARCH: ("검색", "인터넷", "기사", "소식", "개정", "시행", *_NEWS_WORDS),
    Intent.GENERAL: ("안녕", "뭐야", "왜", "어때", *_NEWS_WORDS),
}
# fmt: on

# keyword -> intents it hints at; longest keywords first so that "대형폐기물" is one
# bulk_waste hit rather than also a waste hit for the "폐기" inside it.
_BY_KEYWORD: dict[str, set[Intent]] = {}
for _intent, _words in KEYWORDS.items():
    for _word in _words:
        _BY_KEYWORD.setdefault(_word.lower(), set()).add(_intent)
_ORDERED = sorted(_BY_KEYWORD, key=len, reverse=True)


def keyword_hits(text: str) -> dict[Intent, tuple[str, ...]]:
    """Distinct keywords in ``text`` per intent, in order of appearance; a keyword inside a
    longer hit is not counted."""
    lowered = text.lower()
    taken = [False] * len(lowered)
    first_seen: dict[str, int] = {}
    for word in _ORDERED:
        start = lowered.find(word)
        while start != -1:
            end = start + len(word)
            if not any(taken[start:end]):
                taken[start:end] = [True] * len(word)
                first_seen.setdefault(word, start)
            start = lowered.find(word, start + 1)
    found: dict[Intent, list[str]] = {}
    for word in sorted(first_seen, key=first_seen.__getitem__):
        for intent in _BY_KEYWORD[word]:
            found.setdefault(intent, []).append(word)
    return {intent: tuple(words) for intent, words in found.items()}
