"""From what the user wrote to an item-level answer: the item, the conditions that change it,
its own steps, caveats, hazards and the question to ask when the material is ambiguous.

Order of decisions (each recorded in ``Resolution.conditions`` so the answer can say which one
decided):

1. The item the text names (``KnowledgeBase.match``): the most specific noun.
2. Condition cues ("초록색", "음식물 묻은", "펌프 달린", "깨진", "큰") are looked for in the text
   *without* the matched name, and a condition the noun already implies (``has``: 종이컵 is
   coated, 깨진 유리 is broken) is ignored, so an adjective never overrides a more specific noun.
3. The first condition rule that changes the item (``redirect``) or its step set (``group``)
   applies; then every caveat/step rule of the remaining conditions for the final item.
4. The item's hazard blocks a reward unless the text clears it ("다 쓴", "구멍 뚫은"); an
   ambiguous item with ``options`` asks unless an option's word is in the text, and one
   option named as a word of its own ("식판 플라스틱") answers it: that option's item.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field

from agents.knowledge.guide_files import Group, GuideData, GuideItem, Modifier, ModifierRule
from agents.knowledge.models import ItemGuide, KnownItem
from agents.knowledge.text import PhraseFinder, compact, ends_word, word_ends, words
from schemas.classification import Classification

FUZZY_CHECK = "'{name}'(으)로 알아들었어요: 맞는지 확인해 주세요."
_WORD = re.compile(r"[0-9a-z가-힣]+")
_DISTRICT = re.compile(r"(?<![가-힣])([가-힣]{1,3}구)(?:청|에서|에|는|은|의|도)?(?![가-힣])")
# Words ending in 구 that are not districts ("가구 버리는 요일" asks about furniture).
_NOT_DISTRICT = frozenset(
    "가구 도구 공구 문구 입구 출구 친구 연구 요구 기구 완구 야구 농구 배구 탁구 전구 용구 "
    "욕구 창구 항구 하구 지구 수구 축구 족구 불구 초구 사구".split()
)
_PARTICLE_ENDS = frozenset("이가은는을를도")
# Texts whose resolutions are kept: the vision and rule stages of one scan resolve the same text
# (each caller gets its own copy of the lists, so a kept resolution is never changed).
RESOLVE_CACHE = 4096


@dataclass
class Resolution:
    """An item-level answer's facts (what ``agents.knowledge.wording`` turns into text)."""

    item: KnownItem
    subject: str  # the user's own word for the item
    group: str
    where: str
    steps: list[str]
    caveats: list[str] = field(default_factory=list)  # shown before the steps
    blocking: list[str] = field(default_factory=list)  # insufficiencies: no reward
    conditions: list[str] = field(default_factory=list)  # what changed the answer: "색이 있어서"
    noted: list[str] = field(default_factory=list)  # what only added a caveat or a step
    why: list[str] = field(default_factory=list)
    question: str | None = None
    options: list[str] = field(default_factory=list)
    not_accepted: list[str] = field(default_factory=list)
    source: str = ""
    district_note: str | None = None

    @property
    def classification(self) -> Classification:
        return self.item.classification

    def to_guide(self) -> ItemGuide:
        return ItemGuide(
            item=self.item.name,
            subject=self.subject,
            category=f"{self.item.major} › {self.item.middle}",
            where=self.where,
            steps=self.steps,
            caveats=self.caveats,
            blocking=self.blocking,
            conditions=self.conditions,
            noted=self.noted,
            why=self.why,
            question=self.question,
            options=self.options,
            not_accepted=self.not_accepted,
            source=self.source,
            district_note=self.district_note,
        )

    def copy(self) -> Resolution:
        """A copy whose lists are its own (the item is frozen and shared)."""
        return dataclasses.replace(
            self, steps=list(self.steps), caveats=list(self.caveats),
            blocking=list(self.blocking), conditions=list(self.conditions),
            noted=list(self.noted), why=list(self.why), options=list(self.options),
            not_accepted=list(self.not_accepted),
        )


class Resolver:
    """Applies the guide to matched items; built once by ``KnowledgeBase``."""

    def __init__(self, guide: GuideData, items: list[KnownItem]) -> None:
        self._guide = guide
        self._by_name = {item.name: item for item in items}
        self._entries: dict[str, GuideItem] = {e.name: e for e in guide.items}
        self._display: dict[str, str] = {}
        for item in items:
            for alias in (item.name, *item.aliases):
                self._display.setdefault(compact(alias), alias)
        # district names as compared with a compact text, in the guide's order
        self._district_keys = [(compact(d), d) for d in guide.districts.notes]
        # per modifier, in the guide's order: the modifier, its cues and its negations
        self._modifier_cues = [
            (m, frozenset(m.cues), frozenset(m.negations)) for m in guide.modifiers
        ]
        self._modifier_phrases = PhraseFinder(
            c for m in guide.modifiers for c in (*m.cues, *m.negations)
        )
        self._cached = functools.lru_cache(maxsize=RESOLVE_CACHE)(self._resolve_named)

    @property
    def guide(self) -> GuideData:
        return self._guide

    def entry(self, name: str) -> GuideItem:
        return self._entries.get(name) or GuideItem(name=name)

    def group_of(self, item: KnownItem) -> str:
        entry = self._entries.get(item.name)
        if entry is not None and entry.group:
            return entry.group
        groups = self._guide.minor_groups
        return groups.get(f"{item.middle}/{item.minor}") or groups.get(f"{item.middle}/*") or ""

    def resolve(
        self, item: KnownItem, text: str, matched: str = "", *, fuzzy: bool = False
    ) -> Resolution | None:
        """The item-level answer for ``item`` named in ``text`` (``None``: no guide group)."""
        if self._by_name.get(item.name) is not item:  # not one of ours: nothing to share
            return self._resolve(item, text, matched, fuzzy=fuzzy)
        kept = self._cached(item.name, text, matched, fuzzy)
        return kept.copy() if kept is not None else None

    def _resolve_named(self, name: str, text: str, matched: str, fuzzy: bool) -> Resolution | None:
        return self._resolve(self._by_name[name], text, matched, fuzzy=fuzzy)

    def _resolve(
        self, item: KnownItem, text: str, matched: str, *, fuzzy: bool
    ) -> Resolution | None:
        key = compact(text)
        rest = key.replace(matched, " ", 1) if matched else key
        subject = self._subject(matched, item)
        if len(subject) > 12 or not subject.strip():
            subject = item.name
        said = self._modifier_phrases.found(rest)
        active = [
            m for m, cues, negations in self._modifier_cues
            if not cues.isdisjoint(said) and negations.isdisjoint(said)
        ]
        conditions: list[str] = []
        why: list[str] = []
        group_override: str | None = None
        used: str | None = None
        for modifier in active:
            if modifier.code in self.entry(item.name).has:
                continue
            rule = self._rule_for(modifier, item)
            if rule is None or not (rule.redirect or rule.group):
                continue
            if rule.redirect:
                target = self._by_name[rule.redirect]
                item = target
            else:
                group_override = rule.group
            conditions.append(modifier.label)
            why += [rule.why] if rule.why else []
            used = modifier.code
            break
        asked = self.entry(item.name)
        if asked.hazard and asked.options and any(c in key for c in asked.cleared_by):
            # "페인트통 다 쓴 거": the safe answer to the item's own question (its last option)
            item = self._by_name[list(asked.options.values())[-1]]
            conditions.append("다 비웠으니")
        elif asked.ask and len(answered := _said_options(asked, key, word_ends(words(text)))) == 1:
            # "식판 플라스틱": the user already answered the item's question (as a word of its
            # own: the 종이 of "종이팩" answers nothing about a 컵라면 용기 named beside it)
            target = self._by_name[asked.options[answered[0]]]
            if target is not item:
                item = target
                conditions.append(f"말씀하신 대로({answered[0]})")
        gid = group_override or self.group_of(item)
        if not gid:
            return None
        group = self._guide.groups[gid]
        entry = self.entry(item.name)
        result = Resolution(
            item=item,
            subject=subject,
            group=gid,
            where=group.where,
            steps=list(entry.steps) if entry.steps and not group_override else list(group.steps),
            conditions=conditions,
            why=why,
            not_accepted=list(group.not_accepted),
            source=self._source(group),
        )
        if entry.caveat:
            result.caveats.append(entry.caveat)
        self._apply_caveats(result, active, used, item, gid)
        self._hazard(result, entry, key)
        self._ask(result, entry, key)
        if fuzzy:
            result.blocking.insert(0, FUZZY_CHECK.format(name=item.name))
        result.district_note = self._district(key, item)
        return result

    def _subject(self, matched: str, item: KnownItem) -> str:
        """The user's word for the item, without a particle kept in an alias ("페트병이")."""
        if not matched:
            return item.name
        if matched[-1] in _PARTICLE_ENDS and matched[:-1] in self._display:
            matched = matched[:-1]
        return self._display.get(matched, item.name)

    def _rule_for(self, modifier: Modifier, item: KnownItem) -> ModifierRule | None:
        gid = self.group_of(item)
        bulky = self.entry(item.name).bulky
        for rule in modifier.rules:
            if gid in rule.groups_except:
                continue
            if (
                item.name in rule.items
                or item.middle in rule.middles
                or gid in rule.groups
                or (rule.bulky_items and bulky)
            ):
                return rule
        return None

    def _apply_caveats(
        self,
        result: Resolution,
        active: list[Modifier],
        used: str | None,
        item: KnownItem,
        gid: str,
    ) -> None:
        has = self.entry(item.name).has
        for modifier in active:
            if modifier.code == used or modifier.code in has:
                continue
            rule = self._rule_for(modifier, item)
            if rule is None or rule.redirect or rule.group:
                continue
            if rule.step:
                result.steps.insert(0, rule.step)
            if rule.caveat:
                result.caveats.insert(0, rule.caveat)
                if rule.blocking:
                    result.blocking.append(rule.caveat)
            result.noted.append(modifier.label)

    @staticmethod
    def _hazard(result: Resolution, entry: GuideItem, key: str) -> None:
        if not entry.hazard:
            return
        if entry.hazard_cues and not any(c in key for c in entry.hazard_cues):
            return
        if not entry.hazard_cues and any(c in key for c in entry.cleared_by):
            return
        result.caveats.insert(0, entry.hazard)
        result.blocking.append(entry.hazard)

    @staticmethod
    def _ask(result: Resolution, entry: GuideItem, key: str) -> None:
        if not entry.ask or not entry.options:
            return
        if entry.hazard and any(c in key for c in entry.cleared_by):
            return  # "페인트통 다 쓴 거": the hazard question is answered
        if _said_options(entry, key):
            return  # the user already said which one
        result.question = entry.ask
        result.options = list(entry.options)
        result.blocking.append(entry.ask)

    def _source(self, group: Group) -> str:
        source = self._guide.sources[group.source]
        return source.title

    def _district(self, key: str, item: KnownItem) -> str | None:
        districts = self._guide.districts
        found = next((d for k, d in self._district_keys if k in key), None)
        if found is None:
            return None
        for topic, spec in districts.topics.items():
            if item.name in spec.items or item.middle in spec.middles:
                note = districts.notes[found].get(topic)
                office = f"{found}청"
                text = note.text if note else spec.default.format(district=found, office=office)
                return f"{text} {districts.help.format(office=office)}"
        return None


def _said_options(entry: GuideItem, key: str, ends: set[int] | None = None) -> list[str]:
    """The options of ``entry`` whose own words (not those all its options share) are in
    compact ``key``: "유리 뚜껑" / "금속·스텐 뚜껑" are told apart by 유리, 금속 and 스텐.
    With ``ends`` (``word_ends``), only a word ending there, perhaps with a particle, counts."""
    cues = {label: _option_words(label) for label in entry.options}
    shared = set.intersection(*cues.values()) if cues else set()
    return [
        label for label, own in cues.items()
        if any(_said(cue, key, ends) for cue in own - shared)
    ]


def _said(cue: str, key: str, ends: set[int] | None) -> bool:
    if ends is None:
        return cue in key
    start = key.find(cue)
    while start >= 0:
        if ends_word(key, start + len(cue), ends):
            return True
        start = key.find(cue, start + 1)
    return False


def _option_words(label: str) -> set[str]:
    return {w for w in _WORD.findall(label.lower()) if len(w) >= 2}


def district_in(text: str) -> str | None:
    """A Seoul-style district name ("마포구") in ``text``, if any."""
    for match in _DISTRICT.finditer(text):
        if match.group(1) not in _NOT_DISTRICT:
            return match.group(1)
    return None
