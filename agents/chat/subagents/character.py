"""``character``: which collectible character an item earns and how collecting works.

Characters come from the character service (``characters.CharacterService``: the gRPC
client live, ``InMemoryCharacters`` offline); the knowledge base says which middle category an
item named in the question belongs to.
"""

from __future__ import annotations

from typing import Protocol

from agents.chat.korean import because_is, obj, topic
from agents.chat.subagents.base import Finding, SubTask
from agents.knowledge import ItemMatch
from characters import Character, CharacterService
from schemas.classification import RECYCLABLE

STAGE = "character"
HOW_TO_COLLECT = (
    "물건을 스캔했을 때 재활용폐기물로 분류되고 배출 준비가 다 된 상태(라벨·내용물 같은 부족한 점 없음)면 "
    "그 분류의 캐릭터를 얻어요. 같은 캐릭터는 한 번만 모이고, 이코는 처음부터 함께해요."
)


class ItemMatcher(Protocol):
    def match(self, text: str) -> ItemMatch | None:
        """The item ``text`` names, or None."""
        ...


def _named(characters: list[Character], text: str) -> Character | None:
    return next((c for c in characters if c.name in text), None)


async def run(task: SubTask, characters: CharacterService, kb: ItemMatcher) -> Finding:
    """The character of the item (or character) named; else the collection and its rule."""
    catalog = await characters.catalog()
    text = f"{task.item_hint or ''} {task.query}".strip()
    named = _named(catalog, text)
    found = kb.match(text) if named is None else None
    lines: list[str] = []
    chosen: Character | None = named
    if found is not None and found.classification.major_category == RECYCLABLE:
        chosen = await characters.match(found.classification.middle_category)
        if chosen is not None:
            lines.append(
                f"{obj(found.item.name)} 올바르게 분리배출해 스캔하면 "
                f"{found.classification.middle_category} 캐릭터 {obj(chosen.name)} 얻을 수 있어요."
            )
    elif found is not None:
        lines.append(
            f"{topic(found.item.name)} {because_is(found.classification.major_category)} 캐릭터 보상은 없어요. "
            "캐릭터는 재활용폐기물에만 있어요."
        )
    if named is not None:
        how = (
            f"{named.match_label} 물건을 올바르게 분리배출해 스캔하면 얻어요."
            if named.match_label
            else "처음부터 함께하는 기본 캐릭터예요."
        )
        lines.append(f"{topic(named.name)} {named.type} 캐릭터예요. {how}")
    if chosen is not None:
        lines.append(f'{chosen.name}: "{chosen.dialog}"')
    if not lines:
        names = ", ".join(f"{c.name}({c.match_label or '기본'})" for c in catalog)
        lines.append(f"캐릭터는 모두 {len(catalog)}종이에요: {names}.")
    lines.append(HOW_TO_COLLECT)
    return Finding(
        stage=STAGE,
        found=True,
        title="캐릭터",
        text="\n".join(lines),
        sources=[{"type": "character", "name": chosen.name, "code": chosen.code}]
        if chosen
        else [{"type": "character_catalog", "count": len(catalog)}],
        detail={"character": chosen.name if chosen else None, "catalog": len(catalog)},
    )
