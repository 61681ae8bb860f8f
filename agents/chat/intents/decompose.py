"""Splitting a compound message into clauses, spotting elliptical follow-ups, and assembling
classified clauses into one ``IntentDecision``.

Splitting is deliberately generous: a clause that turns out to carry no intent of its own is
merged back by the classifier, so a wrong cut costs little while a missed cut loses a request.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agents.chat.intents.model import Intent, IntentDecision, SubQuery

# Sentence ends always separate requests ("페트병 어떻게 버려? 근처 수거함도 알려줘").
_SENTENCE_END = re.compile(r"(?:[?？!！。;\n]|\.(?!\d))+")  # "1.5kg" stays whole
# Words that open a new request; they are dropped from the clause that follows.
_OPENERS = frozenset(
    {"그리고", "그리고요", "또", "또한", "게다가", "추가로", "아참", "참", "그다음", "그다음에"}
)
# A request verb joined to the next request: 알려주고 / 찾아주고 / 확인하고 …
_VERB_LINK = re.compile(
    r"(주고|주시고|하고|해주고|해주시고|보고|리고|우고|되고|있고|없고|쓰고|찾고|알고|주며|하며|리며|이며|으며|주구|하구|리구|보구)$"
)
_NOT_VERB = frozenset(
    {"그리고", "창고", "광고", "재고", "최고", "참고", "사고", "경고", "금고", "냉장고"}
)
# With one of these the message asks for several things at once, so noun conjunctions
# ("날씨랑 분리수거 요일 같이 알려줘") separate requests too.
# fmt: off
_GROUP_MARKERS = (
    "같이", "둘 다", "둘다", "모두", "각각", "함께", "차이", "비교", "도 알려", "도 찾아",
    "도 보여", "도 궁금", "도 좀", "도 알고", "도 같이", "도 확인",
)
# fmt: on
_NOUN_LINK = re.compile(r"(이랑|랑|하고|에다가)$")
_NOUN_LINK_LONG = re.compile(r"(와|과)$")  # only on words of 3+ syllables: 사과, 결과 …

# fmt: off
_FOLLOW_UP_OPENERS = (
    "그럼", "그러면", "그렇다면", "그건", "그거", "그것", "그걸", "그게", "이건", "이거는",
    "저건", "저거", "아까", "거기", "그 중", "그중", "그곳", "그쪽", "이번엔", "이번에는",
    "다시", "그 다음", "나머지", "그 외", "다른", "말고", "더 ", "좀 더",
)
# Anywhere in a clause these refer back to the previous answer ("좀 더 밝게 다시").
_ANAPHORA = frozenset({"다시", "말고", "대신", "걔", "걔는", "거기", "거기는", "그거", "그건"})
# Words that steer the conversation but name nothing; they are left out of similarity so that
# "그럼" does not look like "그림" (image_generation) and "음.." like "음식물".
_DISCOURSE = frozenset(
    {"그럼", "그러면", "그렇다면", "그리고", "또", "아", "어", "음", "흠", "참", "아참", "근데",
     "그런데", "혹시", "저기", "저", "자", "그래서", "그니까", "암튼", "아무튼"}
)
# fmt: on
# "X는?", "X도?", and "X는 어때?" (how about X) lean on the previous turn's question.
_ELLIPTICAL_END = re.compile(r"(은|는|도|은요|는요|이요|요|건|거)(\s*어때요?)?\s*[?？]*$")
_ELLIPTICAL_MAX_CHARS = 10


# "… 근처 수거함도 알려줘": an added request marked by 도 starts a new clause, together with the
# words that qualify it.
_ALSO = re.compile(r"^[가-힣]{2,}도$")
_NOT_ALSO = frozenset({"정도", "온도", "제도", "속도", "강도", "각도", "용도", "태도", "습도"})
_QUALIFIERS = frozenset(
    {"근처", "근처에", "가까운", "주변", "주변에", "오늘", "내일", "이번", "우리", "동네", "집"}
)


def _also_cut(part: list[str], bare: str) -> int | None:
    """Where to cut ``part`` (which ends with ``bare``) for an added 도 request, if anywhere."""
    if not _ALSO.match(bare) or bare in _NOT_ALSO or len(part) < 3:
        return None
    start = len(part) - 1
    while start > 1 and part[start - 1].strip(",，") in _QUALIFIERS:
        start -= 1
    return start


def _split_words(clause: str, *, nouns: bool) -> list[str]:
    parts: list[list[str]] = [[]]
    since_comma = 0
    for word in clause.split():
        bare = word.strip(",，")
        if bare in _OPENERS:
            parts.append([])
            since_comma = 0
            continue
        parts[-1].append(word)
        cut = _also_cut(parts[-1], bare) if nouns else None
        if cut is not None:
            parts[-1], tail = parts[-1][:cut], parts[-1][cut:]
            parts.append(tail)
        since_comma += 1
        # 랑/이랑/하고 always join two requests or two nouns of one request; a wrong cut is
        # merged back by the classifier, a missed one drops a request. 및, 와/과 only count
        # when the message asks for several things.
        linked = (
            (_VERB_LINK.search(bare) and bare not in _NOT_VERB)
            or _NOUN_LINK.search(bare)
            or (nouns and (bare == "및" or (len(bare) >= 3 and _NOUN_LINK_LONG.search(bare))))
        )
        # A comma ends a clause only after a real clause (2+ words): "페트병, 캔, 유리병
        # 어떻게 버려?" is one list, not three requests.
        comma = word.endswith((",", "，"))
        if linked or (comma and since_comma >= 2):
            parts.append([])
        if comma:
            since_comma = 0
    return [" ".join(p).strip(",， ") for p in parts if p]


def split_clauses(message: str) -> list[str]:
    """Candidate clauses of ``message`` in order (the whole message when nothing splits it)."""
    nouns = any(marker in message for marker in _GROUP_MARKERS)
    clauses: list[str] = []
    for sentence in _SENTENCE_END.split(message):
        clauses.extend(c for c in _split_words(sentence.strip(), nouns=nouns) if c.strip())
    return clauses or [message.strip()]


def is_follow_up(clause: str) -> bool:
    """True when the clause leans on what came before ("그럼 유리병은?", "내일은?")."""
    text = clause.strip()
    if text.startswith(_FOLLOW_UP_OPENERS) or any(
        w.strip(".,!?~") in _ANAPHORA for w in text.split()
    ):
        return True
    compact = "".join(text.split())
    return len(compact) <= _ELLIPTICAL_MAX_CHARS and bool(_ELLIPTICAL_END.search(text))


def strip_discourse(clause: str) -> str:
    """The clause without its leading discourse words ("그럼 유리병은?" → "유리병은?")."""
    words = clause.split()
    i = 0
    while i < len(words) and words[i].strip(".,!?~…") in _DISCOURSE:
        i += 1
    return " ".join(words[i:])


def assemble(parts: Sequence[tuple[str, Intent, float]], message: str) -> IntentDecision:
    """One decision from classified clauses: one sub-query per intent, in asking order.

    ``general`` is the fallback, not a task: next to real requests it is dropped ("안녕!
    페트병 어떻게 버려?" is a waste question). Clauses of the same intent are joined, since one
    subagent answers them together.
    """
    real = [p for p in parts if p[1] is not Intent.GENERAL]
    if not real:
        confidence = max((p[2] for p in parts), default=0.0)
        only = SubQuery(intent=Intent.GENERAL, text=message.strip(), confidence=confidence)
        return IntentDecision(sub_queries=[only], primary=Intent.GENERAL, is_multi=False)
    texts: dict[Intent, list[str]] = {}
    confidences: dict[Intent, float] = {}
    for text, intent, confidence in real:
        texts.setdefault(intent, []).append(text)
        confidences[intent] = max(confidences.get(intent, 0.0), confidence)
    if len(texts) == 1:
        # A single request keeps the user's own words rather than our clause cuts.
        texts = {intent: [message.strip()] for intent in texts}
    subs = [
        SubQuery(intent=i, text=" ".join(t), confidence=confidences[i]) for i, t in texts.items()
    ]
    primary = max(subs, key=lambda s: s.confidence).intent
    return IntentDecision(sub_queries=subs, primary=primary, is_multi=len(subs) > 1)
