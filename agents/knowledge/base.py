"""The knowledge base: item matching, situation tags, disposal rules, retrieval, characters.

Built once from the data files (``KnowledgeBase.load``) and read-only afterwards, so one
instance is shared by every handler. All indexes are built at load; a match is a few dictionary
probes over the text's positions, well under a millisecond.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from agents.knowledge.files import KnowledgeData, load_data
from agents.knowledge.mentions import outermost, stands_alone, straddles, wholes_over_parts
from agents.knowledge.models import (
    CategorySummary,
    DisposalRule,
    ItemMatch,
    KnownItem,
    RuleHit,
    SituationTag,
)
from agents.knowledge.resolve import Resolution, Resolver
from agents.knowledge.search import CategorySearch
from agents.knowledge.text import (
    FuzzyIndex,
    PhraseFinder,
    ascii_tokens,
    compact,
    ends_word,
    has_hangul,
    word_ends,
    words,
)
from agents.knowledge.wording import step_dict
from characters import Character
from schemas.classification import RECYCLABLE, Classification

EXACT_SCORE, PRIMARY_SCORE, SECONDARY_SCORE, FUZZY_WEIGHT = 1.0, 0.9, 0.8, 0.85
MIN_FUZZY_SIMILARITY = 0.8
# Words of up to 3 syllables are not "corrected" by one changed initial consonant (FuzzyIndex)
OTHER_WORD_SYLLABLES = 3
SCAN_CACHE = 4096  # texts whose matches are kept (ItemMatch is frozen, so sharing is safe)
# Sorting waste itself tells no part's state: "소주병 뚜껑 분리배출" asks about the cap, though
# "뚜껑분리" (the cap taken off) is in it.
SORTING = ("분리배출", "분리수거")
# A situation tag whose condition rule already spoke (in the item-level answer) adds no
# second, differently worded insufficiency.
_TAG_CONDITION = {
    "contaminated": "음식물·기름이 묻어서",
    "tape_attached": "테이프·송장이 붙어 있어서",
    "cap_attached": "뚜껑이 달려 있어서",
    "broken": "깨져서",
    "coated": "코팅되어 있어서",
    "mixed_material": "여러 재질이 섞여 있어서",
    "pressurized": "가스가 남아 있어서",
}


@dataclass(frozen=True)
class _Alias:
    text: str  # compact form (Hangul aliases) or space-joined tokens (latin aliases)
    item: int
    tokens: tuple[str, ...] = ()


class KnowledgeBase:
    """Read-only view over the validated data; see the package docstring for the API."""

    def __init__(self, data: KnowledgeData) -> None:
        self._data = data
        self._items = data.items
        self._item_by_name = {item.name: item for item in data.items}
        self._rules = data.rules
        self._exact: dict[str, int] = {}
        self._by_first: dict[str, list[_Alias]] = defaultdict(list)
        self._latin: list[_Alias] = []
        for index, item in enumerate(data.items):
            for alias in (item.name, *item.aliases):
                key = compact(alias)
                self._exact[key] = index
                if has_hangul(alias) or not ascii_tokens(alias):
                    self._by_first[key[0]].append(_Alias(key, index))
                else:
                    tokens = tuple(ascii_tokens(alias))
                    self._latin.append(_Alias(" ".join(tokens), index, tokens))
        # ignore phrases are stored compact; they may have been typed with spaces
        self._ignored = [re.compile(" ?".join(map(re.escape, p))) for p in data.ignore_phrases]
        self._fuzzy = FuzzyIndex(
            (alias.item, alias.text) for aliases in self._by_first.values() for alias in aliases
        )
        self._notes = {(i.middle, i.minor): i.note for i in data.items if i.note}
        self._characters = {c.match_label: c for c in data.characters if not c.is_default}
        self._default = next(c for c in data.characters if c.is_default)
        self._categories = CategorySearch(data.majors, data.rules)
        self._resolver = Resolver(data.guide, data.items) if data.guide else None
        # per tag, in vocabulary order: its code, cues, negations and weak cues
        self._tag_cues = [
            (tag.code, frozenset(tag.cues), frozenset(tag.negations), frozenset(tag.weak_cues))
            for tag in data.tags
        ]
        self._tag_phrases = PhraseFinder(
            c for _, *kinds in self._tag_cues for cues in kinds for c in cues
        )
        # Per tag of a part's state: its code, the phrases telling it either way, the part's
        # names. Not "뚜껑은 따로": the part "separately" asks about the part as often as it
        # tells it is off ("맥주병 뚜껑은 따로 모아요").
        self._part_states = [
            (t.code, frozenset(p for p in t.cues + t.negations if "따로" not in p), t.parts)
            for t in data.tags if t.parts
        ]
        # the situation tags each middle category takes as an insufficiency
        self._issues = {middle: set(rule.situation_issues) for middle, rule in data.rules.items()}
        self._scan_cached = functools.lru_cache(maxsize=SCAN_CACHE)(self._scan_text)
        self._tags_cached = functools.lru_cache(maxsize=SCAN_CACHE)(self._situation_tags)

    @classmethod
    def load(cls, path: Path | None = None) -> KnowledgeBase:
        """Load and validate the data directory (default: the package's ``data/``)."""
        return cls(load_data(path))

    # -- items -------------------------------------------------------------------------------

    def match(self, text: str) -> ItemMatch | None:
        """The item ``text`` names: exact alias, else the most specific alias inside the text
        (a name inside a longer name found there does not count: "종이" in "종이팩"; a primary
        item beats a part like "송장"; longer beats shorter; later beats earlier, since Korean
        puts the head noun last: "기름 묻은 비닐"; a part whose state the text tells gives way to
        its whole: "소주병 뚜껑 뺐어요" is the bottle), else a typo-tolerant match. A one-syllable
        name counts only as a word of its own, perhaps with a particle: "책은" but not "책상"."""
        matches = self._scan(text)
        return matches[0] if matches else None

    def _scan(self, text: str) -> list[ItemMatch]:
        """Every item found in ``text``, best first (one entry per item); the same text is
        scanned by the vision, rule and answer stages of one scan, so results are cached."""
        return list(self._scan_cached(text))

    def _scan_text(self, text: str) -> tuple[ItemMatch, ...]:
        return tuple(self._scan_uncached(text))

    def _scan_uncached(self, text: str) -> list[ItemMatch]:
        spaced = words(text)
        for phrase in self._ignored:
            spaced = phrase.sub("", spaced)
        key = spaced.replace(" ", "")
        tokens = ascii_tokens(text)
        if not key and not tokens:
            return []
        if key in self._exact:
            return [self._result(self._exact[key], EXACT_SCORE, key, "exact")]
        ends = word_ends(spaced)
        starts = {0, *ends}
        hangul = [
            (start, start + len(alias.text), alias)
            for start, first in enumerate(key)
            for alias in self._by_first.get(first, ())
            if key.startswith(alias.text, start)
            and stands_alone(key, start, len(alias.text), starts, ends)
            and not straddles(start, start + len(alias.text), ends)
        ]
        hangul = wholes_over_parts(hangul, key, self._told_parts(key), is_whole=self._is_whole)
        joined = f" {' '.join(tokens)} "
        latin = [
            (start, start + len(alias.text), alias)
            for alias in self._latin
            if (start := joined.find(f" {alias.text} ")) >= 0
        ]
        ranked: dict[int, tuple[tuple[bool, int, int], str]] = {}
        for end, alias in [
            *((end, alias) for _, end, alias in outermost(hangul, self._secondary)),
            *(
                (0, alias) for _, _, alias in outermost(latin, self._secondary)
            ),  # after any Hangul tie
        ]:
            rank = (not self._items[alias.item].secondary, len(alias.text), end)
            if rank > ranked.get(alias.item, ((False, 0, 0), ""))[0]:
                ranked[alias.item] = (rank, alias.text)
        results = [
            self._result(index, PRIMARY_SCORE if rank[0] else SECONDARY_SCORE, matched, "substring")
            for index, (rank, matched) in sorted(
                ranked.items(), key=lambda kv: kv[1][0], reverse=True
            )
        ]
        if not results and key:
            # a typo'd name is a word of its own, give or take a particle ("택베박스를")
            stops = {end for end in range(1, len(key) + 1) if ends_word(key, end, ends)}
            fuzzy = self._fuzzy.search(
                key,
                min_similarity=MIN_FUZZY_SIMILARITY,
                starts=starts,
                ends=stops,
                other_words=OTHER_WORD_SYLLABLES, compounds=True,
            )
            results = [
                self._result(index, round(FUZZY_WEIGHT * similarity, 3), name, "fuzzy")
                for index, (similarity, name) in sorted(
                    fuzzy.items(), key=lambda kv: (-kv[1][0], kv[0])
                )  # ties by the items' order, not by the index's set order (it varies by run)
            ]
        return results

    def _told_parts(self, key: str) -> dict[str, str]:
        """The parts whose state compact ``key`` tells, on or off, each with the tag of its
        state ("뚜껑" → cap_attached). "뚜껑 있는데" (I have caps) reads as a cap left on."""
        for sorting in SORTING:  # a space, so no cue is spliced from the words around it
            key = key.replace(sorting, " ")
        said = self._tag_phrases.found(key)
        return {
            part: code
            for code, phrases, parts in self._part_states
            if not phrases.isdisjoint(said)
            for part in parts
        }

    def _is_whole(self, alias: _Alias, tag: str) -> bool:
        """Whether ``alias`` names a primary item whose category takes ``tag`` as an issue."""
        item = self._items[alias.item]
        return not item.secondary and tag in self._issues.get(item.middle, ())

    def _secondary(self, alias: _Alias) -> bool:
        return self._items[alias.item].secondary

    def _result(
        self, index: int, score: float, matched: str, method: Literal["exact", "substring", "fuzzy"]
    ) -> ItemMatch:
        item = self._items[index]
        return ItemMatch(
            item=item,
            classification=item.classification,
            default_tags=list(item.default_tags),
            score=score,
            matched=matched,
            method=method,
        )

    def resolve(self, text: str, item: str | None = None) -> Resolution | None:
        """The item-level answer for what ``text`` names (or for ``item`` named in it):
        conditions applied, own steps, caveats, hazards, the question when ambiguous."""
        if self._resolver is None:
            return None
        found = next((m for m in self._scan(text) if item is None or m.item.name == item), None)
        if found is None:
            known = self._item_by_name.get(item) if item else None
            if known is None:
                return None
            return self._resolver.resolve(known, text)
        return self._resolver.resolve(
            found.item, text, found.matched, fuzzy=found.method == "fuzzy"
        )

    def group_of(self, item: KnownItem) -> str:
        return self._resolver.group_of(item) if self._resolver else ""

    def guide_sources(self) -> dict[str, str]:
        """Source id → title of every item family's facts."""
        if self._resolver is None:
            return {}
        return {k: v.title for k, v in self._resolver.guide.sources.items()}

    def item(self, name: str) -> KnownItem | None:
        return self._item_by_name.get(name)

    def items(self) -> list[KnownItem]:
        return list(self._items)

    # -- situations --------------------------------------------------------------------------

    def situation_tags(self, text: str) -> list[str]:
        """Situation tag codes revealed by ``text`` ("라벨 안 뗀" → label_attached), in vocabulary order."""
        return list(self._tags_cached(text))

    def _situation_tags(self, text: str) -> tuple[str, ...]:
        key = compact(text)
        said = self._tag_phrases.found(key)
        if not said:
            return ()
        return tuple(
            code
            for code, cues, negations, weak_cues in self._tag_cues
            if not cues.isdisjoint(said)
            or (negations.isdisjoint(said) and not weak_cues.isdisjoint(said))
        )

    def situation_vocabulary(self) -> list[SituationTag]:
        return list(self._data.tags)

    def adjust_for_tags(
        self, classification: Classification, tags: Sequence[str]
    ) -> Classification:
        """Reclassify when a situation changes the category itself (a broken glass bottle is
        no longer glass recycling but non-combustible waste); otherwise unchanged."""
        redirect = self._data.redirects.get(classification.middle_category, {})
        for tag in tags:
            if tag in redirect:
                return self._item_by_name[redirect[tag]].classification
        return classification

    # -- rules and retrieval -----------------------------------------------------------------

    def rule_for(
        self, classification: Classification, text: str | None = None
    ) -> DisposalRule | None:
        """The disposal rule of ``classification``'s middle category (falling back to the item
        named by its minor category), or ``None`` when the knowledge base has none. With the
        user's ``text`` (or else the first item of the minor category) the rule carries the
        item-level answer (``item_guide``) and the item's own steps."""
        rule = self._category_rule(classification)
        if rule is None or self._resolver is None:
            return rule
        res = self.resolve(text) if text else None
        if res is None or res.item.middle != rule.middle_category:
            first = next(
                (
                    i
                    for i in self._items
                    if i.middle == rule.middle_category and i.minor == classification.minor_category
                ),
                None,
            )
            res = self._resolver.resolve(first, first.name, compact(first.name)) if first else None
        if res is None or res.item.middle != rule.middle_category:
            return rule
        said = {*res.conditions, *res.noted}
        skip = {tag for tag, label in _TAG_CONDITION.items() if label in said}
        return rule.model_copy(
            update={
                "steps": step_dict(res.steps),
                "not_accepted": res.not_accepted or rule.not_accepted,
                "situation_issues": {
                    t: i for t, i in rule.situation_issues.items() if t not in skip
                },
                "item_guide": res.to_guide(),
            }
        )

    def _category_rule(self, classification: Classification) -> DisposalRule | None:
        rule = self._rules.get(classification.middle_category)
        if rule is None or rule.major_category != classification.major_category:
            names = (classification.minor_category, classification.middle_category)
            found = next((m for m in map(self.match, filter(None, names)) if m), None)
            if found is None or found.method == "fuzzy":
                return None
            rule = self._rules[found.item.middle]
        minor = classification.minor_category
        note = self._notes.get((rule.middle_category, minor))
        return rule.model_copy(
            update={"minor_category": minor, "notes": [note, *rule.notes] if note else rule.notes}
        )

    def search(self, query: str, k: int = 3) -> list[RuleHit]:
        """Rules relevant to ``query``: named items first, then categories by n-gram overlap."""
        hits: list[RuleHit] = []
        for found in self._scan(query):
            rule = self._rules[found.item.middle]
            hits.append(
                RuleHit(
                    kind="item",
                    title=found.item.name,
                    score=found.score,
                    classification=found.classification,
                    rule=rule,
                    text=f"{found.item.name}: {self._categories.summary(rule)}",
                )
            )
        hits.extend(self._categories.search(query))
        hits.sort(key=lambda hit: hit.score, reverse=True)
        return hits[: max(k, 0)]

    def categories(self) -> list[CategorySummary]:
        return [
            CategorySummary(name=name, description=description, middles=list(middles))
            for name, description, middles in self._data.majors
        ]

    # -- characters --------------------------------------------------------------------------

    def characters(self) -> list[Character]:
        return list(self._data.characters)

    def default_character(self) -> Character:
        return self._default

    def character_for_middle(self, middle: str) -> Character | None:
        return self._characters.get(middle)

    def reward_for(
        self, classification: Classification, *, rule_found: bool, insufficiencies: Sequence[str]
    ) -> Character | None:
        """DOMAIN.md's reward rule: the character of the middle category, only for a
        recyclable with a rule and an answer that lists no insufficiencies."""
        if classification.major_category != RECYCLABLE or not rule_found or insufficiencies:
            return None
        return self.character_for_middle(classification.middle_category)
