"""``waste_rag``: how to dispose of an item, retrieved from the knowledge base."""

from __future__ import annotations

from typing import Protocol

from agents.chat.korean import topic, with_means
from agents.chat.subagents.base import Finding, SubTask, not_found
from agents.knowledge import ItemMatch, KnowledgeBase, RuleHit
from agents.knowledge.resolve import Resolution, district_in
from agents.knowledge.wording import answer_text

STAGE = "waste_rag"
# Below this a hit is a guess (category n-gram overlap); the fallback chain is better.
MIN_SCORE = 0.5
MAX_ITEMS = 2
# Where 시군구 rules differ enough that the answer should say so (DOMAIN.md).
_LOCAL_RULES = frozenset({"대형폐기물", "음식물류폐기물", "일반종량제폐기물", "공사장생활폐기물"})


class DisposalKnowledge(Protocol):
    """Retrieval over disposal rules. ``search`` is async so that a remote retriever (a vector
    store) can stand in; the shipped adapter is the in-process knowledge base."""

    async def search(self, query: str, k: int = 3) -> list[RuleHit]:
        """Rules relevant to ``query``, best first."""
        ...

    def situation_tags(self, text: str) -> list[str]:
        """Situation tag codes the text reveals ("라벨 안 뗀" → label_attached)."""
        ...

    def match(self, text: str) -> ItemMatch | None:
        """The item ``text`` names, or None."""
        ...

    def resolve(self, text: str, item: str | None = None) -> Resolution | None:
        """The item-level answer (conditions, own steps) for ``item`` as named in ``text``."""
        ...


class LocalKnowledge:
    """``DisposalKnowledge`` over the in-process ``KnowledgeBase`` (offline and in production:
    the knowledge base is our own data, loaded once)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    async def search(self, query: str, k: int = 3) -> list[RuleHit]:
        return self.kb.search(query, k)

    def situation_tags(self, text: str) -> list[str]:
        return self.kb.situation_tags(text)

    def match(self, text: str) -> ItemMatch | None:
        return self.kb.match(text)

    def resolve(self, text: str, item: str | None = None) -> Resolution | None:
        return self.kb.resolve(text, item)


def _buried_one_syllable(kb: DisposalKnowledge, query: str) -> str | None:
    """The item name found only as one syllable inside a longer word ("책" in "정책", "캔" in
    "스캔"): not a mention of that item. Words and particles after it are fine ("책은")."""
    found = kb.match(query)
    if found is None or found.method != "substring" or len(found.matched) != 1:
        return None
    if any(word.startswith(found.matched) for word in query.split()):
        return None
    return found.item.name


async def relevant_hits(kb: DisposalKnowledge, query: str) -> list[RuleHit]:
    """Strong hits for ``query``: the named items (one per middle category, at most
    ``MAX_ITEMS``), else the single best category."""
    buried = _buried_one_syllable(kb, query)
    hits = [h for h in await kb.search(query, k=6) if h.score >= MIN_SCORE and h.title != buried]
    items = [h for h in hits if h.kind == "item"]
    if not items:
        # No named item: the one best category, never a list of loosely related ones.
        return hits[:1]
    chosen: list[RuleHit] = []
    for hit in items:  # several named items ("우유팩이랑 신문지") each get their rule
        if all(h.rule.middle_category != hit.rule.middle_category for h in chosen):
            chosen.append(hit)
    return chosen[:MAX_ITEMS]


def describe_hit(hit: RuleHit, tags: list[str]) -> str:
    """A rule as a short Korean section: category, numbered steps, exclusions, a note."""
    rule = hit.rule
    where = rule.middle_category or rule.major_category
    lines = [f"{topic(hit.title)} {with_means(where)} 버려요 ({rule.major_category})."]
    lines += [f"{n}) {name}: {text}" for n, (name, text) in enumerate(rule.steps.items(), 1)]
    issues = [rule.situation_issues[t] for t in tags if t in rule.situation_issues]
    if issues:
        lines.append("지금 말씀하신 상태라면: " + " ".join(dict.fromkeys(issues)))
    if rule.not_accepted:
        lines.append("이건 안 돼요: " + ", ".join(rule.not_accepted[:4]) + ".")
    if rule.notes:
        lines.append("참고: " + rule.notes[0])
    if rule.major_category in _LOCAL_RULES:
        lines.append("배출 요일·장소·수수료는 시군구마다 달라요. 사는 구청 안내도 확인해 주세요.")
    return "\n".join(lines)


# Questions about one district's schedule: the knowledge base has no per-address calendar.
_SCHEDULE_WORDS = ("요일", "시간", "언제", "수거일", "배출일", "몇시", "몇 시")


def cannot_know(query: str) -> Finding | None:
    """An honest "I don't have that" for a district's collection days or hours, with where to
    look (the 구청 and 120 다산콜센터); ``None`` for other questions."""
    district = district_in(query)
    if district is None or not any(w in query for w in _SCHEDULE_WORDS):
        return None
    text = (
        f"{district}의 배출 요일·시간은 제가 가진 자료에 없어서 정확히 말씀드릴 수 없어요. "
        f"동네마다 다르니 {district}청 누리집의 청소·자원순환 안내를 보거나 "
        "120 다산콜센터(서울, 02-120)에 물어보세요. 보통 전날 저녁부터 배출일 새벽까지 "
        "집 앞이나 지정 장소에 내놓지만, 시간은 구마다 달라요."
    )
    return Finding(
        stage=STAGE,
        found=True,
        title=f"{district} 배출 요일",
        text=text,
        sources=[{"type": "referral", "title": f"{district}청, 120 다산콜센터"}],
        detail={"cannot_know": True, "district": district},
    )


def describe_item(hit: RuleHit, kb: DisposalKnowledge, query: str, tags: list[str]) -> str:
    """The item-level answer when the knowledge base knows the item, else the category's."""
    resolved = kb.resolve(query, hit.title) if hit.kind == "item" else None
    if resolved is None:
        return describe_hit(hit, tags)
    guide = resolved.to_guide()
    rule = hit.rule if resolved.item.middle == hit.rule.middle_category else None
    issues = [rule.situation_issues[t] for t in tags if rule and t in rule.situation_issues]
    return answer_text(guide, extra_issues=issues)


async def run(task: SubTask, kb: DisposalKnowledge) -> Finding:
    """The disposal rules for the item(s) the question (or the chat image) names."""
    query = f"{task.item_hint} {task.query}" if task.item_hint else task.query
    honest = cannot_know(query)
    if honest is not None:
        return honest
    hits = await relevant_hits(kb, query)
    if not hits:
        best = await kb.search(query, k=1)
        return not_found(STAGE, best_score=best[0].score if best else 0.0)
    tags = kb.situation_tags(task.query)
    return Finding(
        stage=STAGE,
        found=True,
        title=" · ".join(h.title for h in hits) + " 버리는 법",
        text="\n\n".join(describe_item(h, kb, query, tags) for h in hits),
        sources=[
            {
                "type": "knowledge",
                "title": h.title,
                "category": h.rule.middle_category,
                "major_category": h.rule.major_category,
                "score": h.score,
            }
            for h in hits
        ],
        detail={"hits": [h.title for h in hits], "score": hits[0].score},
    )
