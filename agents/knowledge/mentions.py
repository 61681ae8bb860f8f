"""Which occurrences of the base's names in a text are mentions of an item.

``KnowledgeBase`` finds every name at every place of a text's compact form (no spaces); these
rules keep the ones a reader would take as the thing named: a short name not from inside an
unknown word, no name straddling two words, the outermost of nested names, and the whole
rather than its part when the text tells the part's state ("소주병 뚜껑 뺐어요").
"""

from __future__ import annotations

from collections.abc import Callable, Collection
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
    found: list[Occurrence[A]], key: str, parts: Collection[str],
    item: Callable[[A], int], secondary: Callable[[A], bool],
) -> list[Occurrence[A]]:
    """``found`` without the names of a part that the text tells the state of (``parts``: "뚜껑"
    in "소주병 뚜껑 뺐어요", "테이프" in "박스 테이프 붙은 채로") and that hold the name of
    another, primary item before the part ("소주병뚜껑" holds "소주병"): the text asks about
    the whole, its part taken off or left on, so the whole is what it names. Without a state
    ("소주병 뚜껑은 어디에 버려요") the part's own name stands."""
    if not parts:
        return found

    def holds_a_whole(start: int, end: int, alias: A) -> bool:
        head_end = next((end - len(p) for p in parts if key.endswith(p, start, end)), None)
        return head_end is not None and any(
            start <= s and e <= head_end and item(a) != item(alias) and not secondary(a)
            for s, e, a in found
        )

    return [(s, e, a) for s, e, a in found if not holds_a_whole(s, e, a)]
