"""The matching primitives of ``agents.knowledge.text`` against their plain definitions: the
banded edit distance and the phrase finder are faster forms that must answer the same."""

from __future__ import annotations

import random

from agents.knowledge.text import PhraseFinder, edit_distance


def full_table_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def test_edit_distance_is_exact_within_the_limit_and_past_it_beyond() -> None:
    rng = random.Random(16)
    for _ in range(20_000):
        a = "".join(rng.choice("ᄀᄁ ᅡᅢab") for _ in range(rng.randint(0, 9)))
        b = "".join(rng.choice("ᄀᄁ ᅡᅢab") for _ in range(rng.randint(0, 9)))
        limit = rng.randint(0, 4)
        exact = full_table_distance(a, b)
        found = edit_distance(a, b, limit)
        if exact <= limit:
            assert found == exact, (a, b, limit)
        else:
            assert found == limit + 1, (a, b, limit)


def test_phrase_finder_finds_the_phrases_inside_the_text() -> None:
    rng = random.Random(16)
    for _ in range(2_000):
        phrases = {"".join(rng.choice("가나다 ab") for _ in range(rng.randint(0, 4)))
                   for _ in range(rng.randint(0, 12))}
        text = "".join(rng.choice("가나다 ab") for _ in range(rng.randint(0, 15)))
        assert PhraseFinder(phrases).found(text) == {p for p in phrases if p in text}


def test_phrase_finder_of_no_phrases_finds_nothing() -> None:
    assert PhraseFinder([]).found("라벨 안 뗀 페트병") == set()
