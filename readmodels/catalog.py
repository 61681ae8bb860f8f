"""The character catalog: reference data seeded into ``character_catalog`` (not a projection).

The source of truth is the knowledge base, whose characters the composition root passes to
``seed_catalog``; the table below (DOMAIN.md, "Characters") is the fallback so the read side
works on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from characters import Character

if TYPE_CHECKING:
    from readmodels.db import Pool

DEFAULT_CHARACTER = "이코"


def _character(code: str, name: str, type_: str, dialog: str, match_label: str | None) -> Character:
    return Character.model_validate({
        "code": code, "name": name, "type": type_, "dialog": dialog,
        "match_label": match_label, "is_default": match_label is None,
    })


FALLBACK_CHARACTERS: tuple[Character, ...] = (
    _character("char-eco", "이코", "에코 가이드", "반가워! 오늘도 분리배출 같이 해 보자.", None),
    _character("char-petty", "페티", "무색 페트", "라벨 떼고 꾹 눌러서 뚜껑 닫아 줘!", "무색페트병"),
    _character("char-metally", "메탈리", "금속 캔", "헹구고 납작하게! 나는 다시 캔이 될 거야.", "금속류"),
    _character("char-paepy", "페이피", "종이", "테이프는 떼고, 젖지 않게 펴서 모아 줘.", "종이"),
    _character("char-plea", "플리", "플라스틱", "내용물은 비우고 깨끗이 헹궈 줘.", "플라스틱류"),
    _character("char-bini", "비니", "비닐", "깨끗한 비닐만 모아 주면 돼!", "비닐류"),
    _character("char-foamy", "폼이", "스티로폼", "테이프랑 스티커는 떼고 하얗게!", "발포합성수지"),
    _character("char-glassy", "글래시", "유리병", "뚜껑은 따로, 깨진 유리는 나랑 따로야.", "유리병"),
    _character("char-factory", "팩토리", "종이팩", "헹궈서 말리고 펼쳐서 종이랑 따로!", "종이팩"),
    _character("char-battery", "배리", "전지", "나는 전용 수거함으로! 불나면 큰일이야.", "전지"),
    _character("char-lighty", "라이티", "조명", "깨지지 않게 전용 수거함에 넣어 줘.", "조명제품"),
    _character("char-cotton", "코튼", "의류·원단", "깨끗한 옷은 의류수거함으로 보내 줘.", "의류및원단"),
    _character("char-elec", "일렉", "전기전자", "폐가전 무상수거 1599-0903을 기억해!", "전기전자제품"),
)


async def seed_catalog(
    pool: Pool, characters: Iterable[Character] = FALLBACK_CHARACTERS
) -> int:
    """Insert or update the catalog rows (idempotent); returns how many were written.

    ``eco2 up`` and ``eco2 migrate`` pass the knowledge base's characters."""
    rows = [
        (c.code, c.name, c.type, c.dialog, c.match_label, c.is_default, i)
        for i, c in enumerate(characters)
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
