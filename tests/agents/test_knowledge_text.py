"""The matching primitives of ``agents.knowledge.text`` against their plain definitions: the
banded edit distance, the phrase finder and the pruned fuzzy search are faster forms that must
answer the same."""

from __future__ import annotations

import random

import pytest

from agents.knowledge.files import load_data
from agents.knowledge.text import (
    FuzzyIndex,
    PhraseFinder,
    bigrams,
    compact,
    edit_distance,
    has_hangul,
    jamo,
)


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


def reference_search(
    names: list[tuple[int, str]], text: str, min_similarity: float, min_jamo: int = 7
) -> dict[int, tuple[float, set[str]]]:
    """``FuzzyIndex.search`` as first written (every window of every name sharing half its jamo
    bigrams with the text, scored by the full edit-distance table): ``key → (similarity, the
    names scoring it)``. Which of tied names the index reports follows its set order."""
    text_grams = bigrams(jamo(text))
    found: dict[int, tuple[float, set[str]]] = {}
    for key, name in names:
        decomposed = jamo(name)
        grams = bigrams(decomposed)
        if len(decomposed) < min_jamo or len(grams & text_grams) < 0.5 * len(grams):
            continue
        best, limit = 0.0, max(1, len(decomposed) // 4)
        for width in (len(name) - 1, len(name), len(name) + 1):
            if width < 1 or width > len(text):
                continue
            for start in range(len(text) - width + 1):
                window = jamo(text[start : start + width])
                distance = full_table_distance(decomposed, window)
                if distance <= limit:
                    best = max(best, 1.0 - distance / max(len(decomposed), len(window)))
        if best < min_similarity:
            continue
        kept = found.get(key, (0.0, set()))
        if best > kept[0]:
            found[key] = (best, {name})
        elif best == kept[0]:
            kept[1].add(name)
    return found


def test_fuzzy_search_finds_what_the_plain_search_finds() -> None:
    items = load_data().items
    names = sorted({(i, compact(a)) for i, item in enumerate(items)
                    for a in (item.name, *item.aliases) if has_hangul(a)})
    index = FuzzyIndex(names)
    rng = random.Random(16)
    words = ["깨진", "다 쓴", "버려요", "담겨있던", "이거", "큰"]
    matched = 0
    for _, name in rng.sample(names, 150):
        typo = list(name)
        typo[rng.randrange(len(typo))] = chr(rng.randint(0xAC00, 0xD7A3))
        text = compact(f"{rng.choice(words)} {''.join(typo)} {rng.choice(words)}")
        found = index.search(text, min_similarity=0.8)
        expected = reference_search(names, text, 0.8)
        assert found.keys() == expected.keys(), text
        for key, (similarity, best) in found.items():
            assert similarity == expected[key][0] and best in expected[key][1], text
        matched += bool(found)
    assert matched >= 30  # the typos do reach the fuzzy scores (46 of the 150)


def test_fuzzy_search_with_word_starts_scores_only_windows_beginning_a_word() -> None:
    index = FuzzyIndex([(0, "테이블"), (1, "라이터")])
    assert set(index.search("스테이플러", min_similarity=0.8)) == {0}  # "테이플" ~ 테이블
    assert index.search("스테이플러", min_similarity=0.8, starts={0}) == {}
    assert set(index.search("헌테이블", min_similarity=0.8, starts={0, 1})) == {0}  # "헌 테이블"


def test_fuzzy_search_with_word_ends_scores_only_windows_ending_a_word() -> None:
    index = FuzzyIndex([(0, "드라이어"), (1, "형광등")])
    assert set(index.search("드라이아이스", min_similarity=0.8)) == {0}  # "드라이아" ~ 드라이어
    assert index.search("드라이아이스", min_similarity=0.8, ends={6}) == {}
    assert set(index.search("형광둥", min_similarity=0.8, ends={3})) == {1}


@pytest.mark.parametrize(
    ("name", "word", "typo"),
    [
        ("프린터", "프린트", True),  # a vowel: left to the knowledge base (프린트 is an item)
        ("형광등", "형광둥", True),  # a vowel slip
        ("생수병", "생숫병", True),  # a final consonant added
        ("케이블", "테이블", False),  # one initial consonant: another word
        ("충전지", "충전기", False),
        ("도자기", "보자기", False),
        ("라면봉지", "라면봉디", True),  # four syllables: a typo still
    ],
)
def test_a_short_word_one_initial_consonant_away_is_another_word(
    name: str, word: str, typo: bool
) -> None:
    index = FuzzyIndex([(0, name)], min_jamo=1)
    assert bool(index.search(word, min_similarity=0.8, other_words=3)) is typo, word
    assert index.search(word, min_similarity=0.8), word  # without the option: a typo


@pytest.mark.parametrize(
    ("name", "word", "typo"),
    [
        ("쇠젓가락", "젓가락", False),  # a syllable off the start: the compound's head
        ("배드민턴채", "배드민턴", False),  # a syllable off the end
        ("젓가락", "쇠젓가락", False),  # a syllable more: a compound of the name
        ("배드민턴채", "배드민턴체", True),  # a vowel slip still is a typo
        ("쇠젓가락", "쇠젖가락", True),  # a final consonant slip
    ],
)
def test_a_name_with_a_syllable_more_or_less_at_an_end_is_another_word(
    name: str, word: str, typo: bool
) -> None:
    index = FuzzyIndex([(0, name)])  # windows where the word begins, as the base asks
    assert bool(index.search(word, min_similarity=0.8, starts={0}, compounds=True)) is typo
    assert index.search(word, min_similarity=0.8, starts={0}), word  # without: a typo


def test_short_names_are_left_out_of_the_typo_search() -> None:
    # one jamo is a sixth of 토스터: 포스터, 토스트, 코스터 and 로스터 are other words
    index = FuzzyIndex([(0, "토스터"), (1, "형광등")])
    assert index.search("포스터", min_similarity=0.8) == {}
    assert index.search("토스트", min_similarity=0.8) == {}
    assert set(index.search("형광둥", min_similarity=0.8)) == {1}


def test_fuzzy_search_breaks_ties_by_name_not_by_set_order() -> None:
    for names in (["테이프", "테이크"], ["테이크", "테이프"]):  # both one jamo from "테이트"
        index = FuzzyIndex([(0, name) for name in names], min_jamo=6)
        assert index.search("테이트", min_similarity=0.8)[0][1] == "테이크"
