"""Which occurrences of the base's names in a text are mentions of an item.

``KnowledgeBase`` finds every name at every place of a text's compact form (no spaces); these
rules keep the ones a reader would take as the thing named: a short name not from inside an
unknown word, no name straddling two words, the outermost of nested names, and the whole
rather than its part when the text tells the part's state ("소주병 뚜껑 뺐어요").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from agents.knowledge.text import ends_word, idiom_follows

A = TypeVar("A")
Occurrence = tuple[int, int, A]  # (start, end, alias) in the compact text


def stands_alone(key: str, start: int, size: int, starts: set[int], ends: set[int]) -> bool:
    """Whether a name of ``size`` syllables found at ``start`` of compact ``key`` is a mention
    of it: a one-syllable name only as a word of its own, perhaps with a particle ("책은", not
    "책상"); a two-syllable name not from inside a longer word it neither begins nor ends
    ("트리" in "카트리지", "타일" in "스타일러": the word is one the base does not know)."""
    if size == 1:
        return ends_word(key, start + 1, ends) and not idiom_follows(key, start, ends)
    if size == 2:
        return start in starts or ends_word(key, start + 2, ends)
    return True


def straddles(start: int, end: int, ends: set[int]) -> bool:
    """Whether a name found at ``start:end`` begins inside one word and runs into the next:
    "이불" in "많이 불어" is not a mention of 이불 ("종이 박스" starts at a word and is fine)."""
    return start not in ends and start != 0 and any(start < e < end for e in ends)


def outermost(
    found: list[Occurrence[A]], secondary: Callable[[A], bool]
) -> list[Occurrence[A]]:
    """The occurrences not inside a longer one ("종이" in "종이팩") and not cut off by a later
    primary noun they overlap: in "코팅된 종이컵" the head noun "종이컵" wins over "코팅된
    종이" (Korean puts the head noun last); a part ("병뚜껑" in "소주병 뚜껑") cuts nothing off."""
    return [
        (start, end, alias)
        for start, end, alias in found
        if not any(s <= start and end <= e and e - s > end - start for s, e, _ in found)
        and not any(start < s < end < e and not secondary(a) for s, e, a in found)
    ]


def wholes_over_parts(
    found: list[Occurrence[A]], key: str, told: Mapping[str, str],
    *, is_whole: Callable[[A, str], bool],
) -> list[Occurrence[A]]:
    """``found`` without the names of a part whose state the text tells (``told``: a part's
    name → the tag of its state, "뚜껑" in "소주병 뚜껑 뺐어요", "테이프" in "박스 테이프 붙은 채로")
    that hold, before the part, the name of a whole that state matters for (``is_whole(alias,
    tag)``: "소주병" in "소주병뚜껑", a glass bottle whose cap must come off): the text asks about
    the whole, its part taken off or left on. Names that cross from the whole into the part go
    with them ("병라벨" in "페트병라벨"). Without a state told ("소주병 뚜껑은 어디에 버려요"), or
    before a word the state does not matter for ("스텐 뚜껑 뺐어요"), the part's own name stands."""
    dropped: list[tuple[int, int, int]] = []  # (start, end of the whole's name, end)
    for start, end, _ in found:
        part = next((p for p in told if key.endswith(p, start, end)), None)
        if part is None:
            continue
        head_end = end - len(part)
        if any(start <= s and e <= head_end and is_whole(a, told[part]) for s, e, a in found):
            dropped.append((start, head_end, end))
    return [
        (s, e, a) for s, e, a in found
        if not any(start <= s < head_end < e <= end for start, head_end, end in dropped)
    ]
