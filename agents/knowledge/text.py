"""Text normalisation and typo-tolerant matching for Korean item names.

Matching works on a *compact* form (lower case, Hangul/latin/digits only, no spaces) so that
"종이 박스", "종이박스" and "종이박스를" line up. Typos are scored on the jamo decomposition
(ㅌㅐㄱㅂㅔ vs ㅌㅐㄱㅂㅐ is one edit) because a one-syllable typo changes several syllable
n-grams but only one jamo.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Collection, Iterable

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
_NOT_COMPACT = re.compile(r"[^0-9a-z가-힣]+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
_HAS_HANGUL = re.compile(r"[가-힣]")


def compact(text: str) -> str:
    """Lower-cased text with everything but Hangul syllables, latin letters and digits removed."""
    return _NOT_COMPACT.sub("", text.lower())


def words(text: str) -> str:
    """``compact`` text that keeps its word breaks as single spaces ("종이팩, 버려요" → "종이팩 버려요")."""
    return " ".join(_NOT_COMPACT.split(text.lower())).strip()


def word_ends(spaced: str) -> set[int]:
    """Offsets in the compact form of ``spaced`` (the same text without spaces) where a word ends."""
    ends, offset = set(), 0
    for word in spaced.split():
        offset += len(word)
        ends.add(offset)
    return ends


# What may follow a noun inside one written word: particles (josa) and copula endings, each
# optionally closed by polite 요 ("책은요", "캔이에요"). 들 is left out: "캔들" is a candle.
_PARTICLES = frozenset(
    "은 는 이 가 을 를 도 만 과 와 으로 로 에 에서 에는 의 랑 이랑 하고 나 이나 까지 부터 처럼 보다 "
    "이에 예 이야 야 인가 인데 이지 이고 이라".split()
)


def ends_word(key: str, end: int, ends: set[int]) -> bool:
    """Whether a noun ending at offset ``end`` of compact ``key`` also ends its word, give or
    take a particle: "책", "책은", "캔이요" do; "책상", "캔들" do not (``ends``: ``word_ends``)."""
    word_end = min((e for e in ends if e >= end), default=len(key))
    rest = key[end:word_end].removesuffix("요")
    return not rest or rest in _PARTICLES


# One-syllable nouns that the next word turns into an idiom: "천 원(짜리)" is money, not
# fabric; "공(을) 들여" is effort, not a ball. Per noun: how the next word may begin, and
# what may follow that beginning inside the word ("원단" is cloth, "원짜리" money).
_IDIOMS = {
    "천": (("원",), frozenset({"", "짜리", "어치", "씩"}) | _PARTICLES),
    "공": (("들여", "들인", "들이", "들였"), None),
}


def idiom_follows(key: str, start: int, ends: set[int]) -> bool:
    """Whether the one-syllable noun at offset ``start`` of compact ``key`` is part of an
    idiom with the word after its own: "천 원", "삼천 원짜리", "공을 들여" (not "천 원단")."""
    idiom = _IDIOMS.get(key[start])
    if idiom is None:
        return False
    word_end = min((e for e in ends if e > start), default=len(key))
    following = key[word_end : min((e for e in ends if e > word_end), default=len(key))]
    heads, tails = idiom
    head = next((h for h in heads if following.startswith(h)), None)
    if head is None:
        return False
    return tails is None or following[len(head) :].removesuffix("요") in tails


class PhraseFinder:
    """Which of a fixed set of phrases occur in a text (``{p for p in phrases if p in text}``):
    each piece of the text as long as some phrase is looked up in the set once, instead of
    every phrase searched for in the text (situation tags and condition cues test each text
    against a few hundred phrases; 26 → 3 µs a text for the tags). A text with more such
    pieces than there are phrases (past ~50 characters for the tags) is searched phrase by
    phrase instead."""

    def __init__(self, phrases: Iterable[str]) -> None:
        self._phrases = frozenset(phrases)
        self._lengths = sorted({len(p) for p in self._phrases})

    def found(self, text: str) -> set[str]:
        phrases, size = self._phrases, len(text)
        if size * len(self._lengths) > len(phrases):  # a long text: fewer phrases than pieces
            return {phrase for phrase in phrases if phrase in text}
        return {
            piece
            for length in self._lengths
            for start in range(size - length + 1)
            if (piece := text[start : start + length]) in phrases
        }


def ascii_tokens(text: str) -> list[str]:
    """Latin/digit words, splitting camelCase and snake_case (for filenames like petBottle_1.jpg)."""
    return _ASCII_TOKEN.findall(_CAMEL.sub(" ", text).lower())


def has_hangul(text: str) -> bool:
    return bool(_HAS_HANGUL.search(text))


def jamo(text: str) -> str:
    """Decompose Hangul syllables into lead/vowel/tail jamo; other characters pass through."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if _HANGUL_FIRST <= code <= _HANGUL_LAST:
            index = code - _HANGUL_FIRST
            out.append(chr(0x1100 + index // 588))
            out.append(chr(0x1161 + (index % 588) // 28))
            if index % 28:
                out.append(chr(0x11A7 + index % 28))
        else:
            out.append(ch)
    return "".join(out)


def bigrams(text: str) -> set[str]:
    if len(text) < 2:
        return {text} if text else set()
    return {text[i : i + 2] for i in range(len(text) - 1)}


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance when it is at most ``limit``, else ``limit + 1``.

    Only the diagonal band ``|i - j| <= limit`` of the table is computed: a cell outside it is
    at least ``|i - j|`` and so past the limit, and every cell is kept capped at ``limit + 1``
    (capping commutes with the recurrence's ``min`` and ``+ 1``, so capped cells are exact up
    to the limit). The fuzzy search runs this for every window of an unmatched text against
    every candidate name: the full table was most of a typo's several milliseconds.
    """
    size_a, size_b = len(a), len(b)
    over = limit + 1
    if abs(size_a - size_b) > limit:
        return over
    previous = [j if j <= limit else over for j in range(size_b + 1)]
    for i in range(1, size_a + 1):
        ca = a[i - 1]
        current = [over] * (size_b + 1)
        if i <= limit:
            current[0] = i
        row_min = current[0]
        for j in range(max(1, i - limit), min(size_b, i + limit) + 1):
            value = previous[j - 1] + (ca != b[j - 1])
            if previous[j] + 1 < value:
                value = previous[j] + 1
            if current[j - 1] + 1 < value:
                value = current[j - 1] + 1
            if value > over:
                value = over
            current[j] = value
            if value < row_min:
                row_min = value
        if row_min > limit:
            return over
        previous = current
    return previous[size_b]


class FuzzyIndex:
    """Jamo-bigram inverted index over names; scores a text by its best-matching window.

    Only names of at least ``min_jamo`` jamo take part: shorter names match by substring only,
    because one edit in a word of six jamo or fewer (three open syllables: 토스터, 도자기; two
    closed ones: 장판, 꿀병) too often turns it into another real word that the base does not
    know (포스터, 토스트, 보자기, 강판, 물병), while a typo of a longer name (형광둥, 페트뱅,
    생숫병: seven jamo or more) still reaches it.
    """

    def __init__(self, names: Iterable[tuple[int, str]], *, min_jamo: int = 7) -> None:
        self._names: dict[int, list[tuple[str, str, set[str]]]] = defaultdict(list)
        self._postings: dict[str, set[tuple[int, int]]] = defaultdict(set)
        for key, name in names:
            decomposed = jamo(name)
            if len(decomposed) < min_jamo:
                continue
            grams = bigrams(decomposed)
            slot = (key, len(self._names[key]))
            self._names[key].append((name, decomposed, grams))
            for gram in grams:
                self._postings[gram].add(slot)

    def search(
        self,
        text: str,
        *,
        min_similarity: float,
        starts: Collection[int] | None = None,
        ends: Collection[int] | None = None,
        other_words: int = 0,
        compounds: bool = False,
    ) -> dict[int, tuple[float, str]]:
        """``key → (similarity, name)`` for names similar to some window of compact ``text``;
        with ``starts``, only windows beginning at one of those offsets (where a word begins:
        a typo'd name is typed as a word, while a window from inside a word the base does not
        know is most often another word: "테이플" in "스테이플러" is not a misspelt 테이블);
        with ``ends``, only windows ending at one of those offsets, for the same reason at the
        other end ("드라이아" of "드라이아이스" is not a misspelt 드라이어). With
        ``other_words``, a window of at most that many syllables that differs from a name as
        long in one syllable's initial consonant alone is taken for another word, not a typo:
        in short words that change most often makes one (포스터/토스터, 케이블/테이블,
        충전기/충전지, 보자기/도자기), while a slip of a vowel or a final consonant seldom
        does (형광둥, 페트뱅, 생숫병). With ``compounds``, a window that is a name with one whole
        syllable more or less at its start or end is another word too, the compound's head or
        a compound of it ("젓가락" is not a misspelt 쇠젓가락, nor "배드민턴" 배드민턴채): a typo
        slips a jamo, it does not drop a syllable."""
        pieces = [jamo(ch) for ch in text]  # a window's jamo is the join of its characters'
        text_grams = bigrams("".join(pieces))
        shared: dict[tuple[int, int], int] = defaultdict(int)
        for gram in text_grams:
            for slot in self._postings.get(gram, ()):
                shared[slot] += 1
        found: dict[int, tuple[float, str]] = {}
        # (start, width) → the window's jamo and their set, shared by the names
        windows: dict[tuple[int, int], tuple[str, frozenset[str]]] = {}
        for (key, pos), count in shared.items():
            name, decomposed, grams = self._names[key][pos]
            if count < 0.5 * len(grams):
                continue
            similarity = _best_window(
                name, decomposed, pieces, windows, min_similarity, starts, ends, other_words,
                compounds,
            )
            # of tied names the smaller: the postings' set order differs from run to run
            if similarity >= min_similarity and (-similarity, name) < _rank(found.get(key)):
                found[key] = (similarity, name)
        return found


def _rank(found: tuple[float, str] | None) -> tuple[float, str]:
    return (-found[0], found[1]) if found else (0.0, "")


def _best_window(
    name: str,
    name_jamo: str,
    pieces: list[str],
    windows: dict[tuple[int, int], tuple[str, frozenset[str]]],
    min_similarity: float,
    starts: Collection[int] | None = None,
    ends: Collection[int] | None = None,
    other_words: int = 0,
    compounds: bool = False,
) -> float:
    """The best similarity of ``name`` to a window of the text whose characters' jamo are
    ``pieces`` (windows of one character more or less than the name, or as long), when it is
    at least ``min_similarity``; else some lower value.

    A window is scored only up to the distance that can still reach ``min_similarity``
    (``_allowed``): a farther one cannot count, and the smaller bound skips most windows on
    their length or the jamo they lack alone, and ends most distance tables after a row or two."""
    best = 0.0
    size = len(name_jamo)
    limit = max(1, size // 4)
    name_chars = set(name_jamo)
    for width in (len(name) - 1, len(name), len(name) + 1):
        if width < 1 or width > len(pieces):
            continue
        for start in range(len(pieces) - width + 1):
            if starts is not None and start not in starts:
                continue
            if ends is not None and start + width not in ends:
                continue
            known = windows.get((start, width))
            if known is None:
                joined = "".join(pieces[start : start + width])
                known = windows[start, width] = (joined, frozenset(joined))
            window, window_chars = known
            longer = max(size, len(window))
            allowed = _allowed(limit, longer, min_similarity)
            # each jamo of the name that the window lacks is one edit at least
            if abs(size - len(window)) > allowed or len(name_chars - window_chars) > allowed:
                continue
            distance = edit_distance(name_jamo, window, allowed)
            if distance > allowed:
                continue
            if width == len(name) <= other_words and _initial_swapped(
                name, pieces[start : start + width]
            ):
                continue
            window_pieces = pieces[start : start + width]
            if compounds and width != len(name) and _syllable_off_an_end(name, window_pieces):
                continue
            best = max(best, 1.0 - distance / longer)
    return best


def _initial_swapped(name: str, pieces: list[str]) -> bool:
    """Whether syllables whose jamo are ``pieces`` differ from ``name`` (as long) in one
    syllable's initial consonant and nothing else ("포스터" from 토스터)."""
    pairs = zip(name, pieces, strict=True)
    changed = [(jamo(ch), piece) for ch, piece in pairs if jamo(ch) != piece]
    if len(changed) != 1:
        return False
    ours, theirs = changed[0]
    return len(ours) > 1 and len(theirs) > 1 and ours[1:] == theirs[1:]


def _syllable_off_an_end(name: str, pieces: list[str]) -> bool:
    """Whether syllables whose jamo are ``pieces`` are ``name`` with one whole syllable more
    or less at its start or its end: such a word is a compound's head or a compound of the
    name, another word, not a typo ("젓가락" of 쇠젓가락, "배드민턴" of 배드민턴채)."""
    syllables = [jamo(ch) for ch in name]
    shorter, longer = sorted((syllables, pieces), key=len)
    return len(longer) == len(shorter) + 1 and shorter in (longer[1:], longer[:-1])


@functools.lru_cache(maxsize=1024)
def _allowed(limit: int, longer: int, min_similarity: float) -> int:
    """The largest distance up to ``limit`` whose similarity (``1 - distance / longer``, the
    same float expression as the score) still reaches ``min_similarity``; -1 when none does."""
    distance = limit
    while distance >= 0 and 1.0 - distance / longer < min_similarity:
        distance -= 1
    return distance
