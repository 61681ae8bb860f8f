"""The character catalog: reference data seeded into ``character_catalog`` (not a projection).

The source of truth is the knowledge base (``agents.knowledge``) when it is installed; the table
below (DOMAIN.md, "Characters") is the fallback so the read side works on its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from readmodels.db import Pool


@dataclass(frozen=True)
class Character:
    code: str
    name: str
    type: str
    dialog: str
    match_label: str | None  # the middle category that earns it; None for the default one
    is_default: bool = False


DEFAULT_CHARACTER = "이코"

FALLBACK_CHARACTERS: tuple[Character, ...] = (
    Character("char-eco", "이코", "에코 가이드", "반가워! 오늘도 분리배출 같이 해 보자.", None, True),
    Character("char-petty", "페티", "무색 페트", "라벨 떼고 꾹 눌러서 뚜껑 닫아 줘!", "무색페트병"),
    Character("char-metally", "메탈리", "금속 캔", "헹구고 납작하게! 나는 다시 캔이 될 거야.", "금속류"),
    Character("char-paepy", "페이피", "종이", "테이프는 떼고, 젖지 않게 펴서 모아 줘.", "종이"),
    Character("char-plea", "플리", "플라스틱", "내용물은 비우고 깨끗이 헹궈 줘.", "플라스틱류"),
    Character("char-bini", "비니", "비닐", "깨끗한 비닐만 모아 주면 돼!", "비닐류"),
    Character("char-foamy", "폼이", "스티로폼", "테이프랑 스티커는 떼고 하얗게!", "발포합성수지"),
    Character("char-glassy", "글래시", "유리병", "뚜껑은 따로, 깨진 유리는 나랑 따로야.", "유리병"),
    Character("char-factory", "팩토리", "종이팩", "헹궈서 말리고 펼쳐서 종이랑 따로!", "종이팩"),
    Character("char-battery", "배리", "전지", "나는 전용 수거함으로! 불나면 큰일이야.", "전지"),
    Character("char-lighty", "라이티", "조명", "깨지지 않게 전용 수거함에 넣어 줘.", "조명제품"),
    Character("char-cotton", "코튼", "의류·원단", "깨끗한 옷은 의류수거함으로 보내 줘.", "의류및원단"),
    Character("char-elec", "일렉", "전기전자", "폐가전 무상수거 1599-0903을 기억해!", "전기전자제품"),
)


def load_characters() -> list[Character]:
    """The catalog from the knowledge base when available, else the built-in table."""
    try:
        knowledge = importlib.import_module("agents.knowledge")
        entries: Iterable[Any] = knowledge.KnowledgeBase.load().characters()
        loaded = [_from_knowledge(entry) for entry in entries]
    except (ImportError, AttributeError, OSError, KeyError, TypeError, ValueError):
        return list(FALLBACK_CHARACTERS)
    return loaded or list(FALLBACK_CHARACTERS)


def _from_knowledge(entry: Any) -> Character:
    def get(name: str, default: Any = None) -> Any:
        if isinstance(entry, dict):
            return entry.get(name, default)
        return getattr(entry, name, default)

    match = get("match_label", get("match"))
    return Character(
        code=str(get("code")),
        name=str(get("name")),
        type=str(get("type", "")),
        dialog=str(get("dialog", "")),
        match_label=str(match) if match else None,
        is_default=bool(get("default", get("is_default", False))) or not match,
    )


async def seed_catalog(pool: Pool, characters: Iterable[Character] | None = None) -> int:
    """Insert or update the catalog rows (idempotent); returns how many were written."""
    rows = [
        (c.code, c.name, c.type, c.dialog, c.match_label, c.is_default, i)
        for i, c in enumerate(characters if characters is not None else load_characters())
    ]
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO character_catalog"
            " (code, name, type, dialog, match_label, is_default, sort_order)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (code) DO UPDATE SET name = EXCLUDED.name, type = EXCLUDED.type,"
            " dialog = EXCLUDED.dialog, match_label = EXCLUDED.match_label,"
            " is_default = EXCLUDED.is_default, sort_order = EXCLUDED.sort_order",
            rows,
        )
    return len(rows)
