"""Domain corrections of an intent decision, using what the knowledge base knows about items.

A classifier sees words; the knowledge base knows which words are things people throw away.
After any classifier (local or LLM) has decided, each sub-query is checked:

- a named item with nothing of another intent's own words ("수박 껍질", "카드 영수증", "랩이랑"
  cut from "랩이랑 근처 제로웨이스트샵") is a disposal question, not small talk, a search, a
  drawing or a place, unless the user asks to make one ("재활용 포스터 만들어줘");
- "폐건전지 분리배출" asks how to dispose, not where the nearest bin is (no place words);
  "LED 전구 어디 버려" too ("어디 버려" is a disposal question, "어디야"/"근처" a place one);
- a bulky item (furniture, 대형폐기물) is ``bulk_waste``; an ordinary item wrongly sent there
  ("캠핑가스 버리기") is ``waste`` unless fees or the report are asked about;
- a district's collection days ("노원구 배출 요일") are a disposal question (the honest answer
  is that only the 구청 knows);
- a short follow-up ("깨졌으면?", "뚜껑은?", "보조배터리는?") after a disposal question is
  one too, and its text carries the previous item ("맥주병 깨졌으면?") so the answer is about
  the user's item, not a repeat of the last answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agents.chat.intents.decompose import is_follow_up, split_clauses
from agents.chat.intents.keywords import keyword_hits
from agents.chat.intents.model import Intent, IntentDecision, SubQuery
from agents.chat.turn import HistoryItem
from agents.knowledge import ItemMatch
from agents.knowledge.resolve import district_in
from agents.knowledge.text import compact

Matcher = Callable[[str], ItemMatch | None]

BULKY_MAJOR = "대형폐기물"
_PLACE = (
    "근처",
    "가까",
    "위치",
    "찾아",
    "주변",
    "어디야",
    "어디있",
    "어디 있",
    "어디에 있",
    "지도",
    "수거함",
    "곳",
)
_DISPOSE = ("버려", "버리", "분리", "배출", "재활용", "처리", "폐기")
_FEE = ("수수료", "비용", "스티커", "신고", "신청", "얼마", "요금")
_SCHEDULE = ("요일", "시간", "언제", "수거일", "배출일", "몇시")
# "포스터 만들어줘" asks for a new one, not how to throw one away
_MAKE = ("만들", "제작", "디자인")
_SHORT = 12  # compact characters: "깨졌으면?", "양념 안 지워지면?"
_SOFT = frozenset({Intent.GENERAL, Intent.WEB_SEARCH, Intent.IMAGE_GENERATION})


def _item(match: Matcher, text: str) -> ItemMatch | None:
    found = match(text)
    if (
        found is None
        or found.method == "fuzzy"
        or (found.item.secondary and len(compact(text)) > 8)
    ):
        return None
    return found


def _bulky(found: ItemMatch) -> bool:
    return found.item.major == BULKY_MAJOR or "large_item" in found.default_tags


def refine_intent(sub: SubQuery, match: Matcher) -> Intent:
    """The intent of one sub-query after the knowledge base's corrections."""
    text = sub.text
    if district_in(text) and any(w in text for w in _SCHEDULE) and sub.intent is not Intent.WEATHER:
        return Intent.WASTE
    found = _item(match, text)
    if found is None:
        return sub.intent
    own_hits = keyword_hits(text).get(sub.intent)
    others = (Intent.WASTE, Intent.BULK_WASTE, Intent.COLLECTION_POINT)
    if sub.intent not in others and not own_hits and not any(m in text for m in _MAKE):
        # an item and nothing of the intent's own ("랩이랑" cut from "… 제로웨이스트샵 알려줘")
        return Intent.BULK_WASTE if _bulky(found) else Intent.WASTE
    if sub.intent is Intent.COLLECTION_POINT and not any(p in text for p in _PLACE):
        return Intent.WASTE
    if sub.intent is Intent.BULK_WASTE and not _bulky(found):
        if not any(f in text for f in _FEE) and found.item.major != BULKY_MAJOR:
            return Intent.WASTE
    if sub.intent is Intent.WASTE and found.item.major == BULKY_MAJOR:
        return Intent.BULK_WASTE
    return sub.intent


def _previous_item(history: Sequence[HistoryItem], match: Matcher) -> tuple[str, str] | None:
    """(the last user message that named an item, its intent) — for follow-ups."""
    for item in reversed(history):
        if item.role == "user" and (found := _item(match, item.content)) is not None:
            return found.item.name, item.intent or ""
    return None


def refine(
    decision: IntentDecision,
    message: str,
    history: Sequence[HistoryItem],
    match: Matcher,
) -> IntentDecision:
    """``decision`` with the knowledge base's corrections applied (see the module doc)."""
    previous = _previous_item(history, match)
    short = len(compact(message)) <= _SHORT or is_follow_up(message)
    last_intent = next((h.intent for h in reversed(history) if h.intent), None)
    # Clauses the classifier joined under one intent are checked one by one: "건전지 버리는
    # 법 알려주고 | 수거함도 찾아줘" were both collection_point, but only the second asks for one.
    pieces = [
        sub.model_copy(update={"text": clause})
        for sub in decision.sub_queries
        for clause in (split_clauses(sub.text) if len(decision.sub_queries) == 1 else [sub.text])
    ]
    if len({refine_intent(p, match) for p in pieces}) < 2:
        pieces = list(decision.sub_queries)
    subs: list[SubQuery] = []
    for sub in pieces:
        # a short follow-up that kept the last turn's topic ("폐지 얼마야?" → "캔은?") stays there
        carried = short and last_intent == sub.intent.value and len(pieces) == 1
        intent = sub.intent if carried else refine_intent(sub, match)
        text = sub.text
        if previous and short and len(pieces) == 1:
            name, prev_intent = previous
            asks_place = any(p in text for p in _PLACE)
            if (
                prev_intent in ("waste", "bulk_waste")
                and not asks_place
                and intent
                in (
                    *_SOFT,
                    Intent.WASTE,
                    Intent.COLLECTION_POINT,
                )
            ):
                intent = Intent.WASTE if prev_intent == "waste" else Intent.BULK_WASTE
                found = _item(match, text)
                if found is None or found.item.secondary:
                    text = f"{name} {text}"  # "맥주병 깨졌으면?", "생수병 뚜껑은?"
        subs.append(sub.model_copy(update={"intent": intent, "text": text}))
    merged: dict[Intent, SubQuery] = {}
    for sub in subs:
        if sub.intent in merged:
            kept = merged[sub.intent]
            merged[sub.intent] = kept.model_copy(
                update={
                    "text": f"{kept.text} {sub.text}",
                    "confidence": max(kept.confidence, sub.confidence),
                }
            )
        else:
            merged[sub.intent] = sub
    if len(merged) > 1 and Intent.GENERAL in merged:
        del merged[Intent.GENERAL]
    ordered = list(merged.values())
    primary = max(ordered, key=lambda s: s.confidence).intent
    return IntentDecision(sub_queries=ordered, primary=primary, is_multi=len(ordered) > 1)
