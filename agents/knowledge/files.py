"""Reading and validating the data files under ``data/``.

Every entry is validated on its own so that an error names the file and the entry
("items.json: 무색페트병 › '생수병': aliases …"); cross-file checks (unknown middle category,
alias claimed by two items, a character for every recyclable middle, …) run after.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.knowledge.errors import KnowledgeDataError
from agents.knowledge.guide_files import GuideData, load_guide
from agents.knowledge.models import DisposalRule, KnownItem, SituationTag
from agents.knowledge.text import compact
from characters import Character
from schemas.classification import RECYCLABLE, UNCLASSIFIED

DEFAULT_DATA_DIR = Path(__file__).with_name("data")
_STRICT = ConfigDict(frozen=True, extra="forbid")
M = TypeVar("M", bound=BaseModel)


class _Middle(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    steps: dict[str, str] = Field(min_length=1)
    not_accepted: list[str]
    notes: list[str]
    tag_issues: dict[str, str | None] = Field(default_factory=dict)
    tag_redirects: dict[str, str] = Field(default_factory=dict)


class _Major(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    middles: list[dict[str, Any]] = Field(min_length=1)


class _Item(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    minor: str = Field(min_length=1)
    aliases: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    secondary: bool = False
    note: str | None = None


@dataclass(frozen=True)
class KnowledgeData:
    """The validated contents of the data directory."""

    majors: list[tuple[str, str, list[str]]]  # (name, description, middle names)
    rules: dict[str, DisposalRule]  # by middle category
    redirects: dict[str, dict[str, str]]  # middle → situation tag → item name
    items: list[KnownItem]
    ignore_phrases: list[str]
    tags: list[SituationTag]
    characters: list[Character]
    guide: GuideData | None = None


def load_data(directory: Path | None = None) -> KnowledgeData:
    """Read and validate ``categories.json``, ``tags.json``, ``items.json`` and ``characters.json``."""
    root = directory or DEFAULT_DATA_DIR
    tags = [
        _entry(SituationTag, raw, "tags.json", f"tag #{i}")
        for i, raw in enumerate(_list(_read(root, "tags.json"), "tags", "tags.json"))
    ]
    _unique([t.code for t in tags], "tags.json", "tag code")
    tag_by_code = {t.code: t for t in tags}
    majors, rules, redirects = _categories(_read(root, "categories.json"), tag_by_code)
    items_raw = _read(root, "items.json")
    items = _items(items_raw, rules, tag_by_code)
    for middle, redirect in redirects.items():
        for tag, target in redirect.items():
            if target not in {item.name for item in items}:
                raise KnowledgeDataError(
                    f"categories.json: {middle!r}: tag_redirects[{tag!r}] names unknown item {target!r}"
                )
    ignore = items_raw.get("ignore_phrases", [])
    if not isinstance(ignore, list) or not all(isinstance(p, str) and p for p in ignore):
        raise KnowledgeDataError("items.json: 'ignore_phrases' must be a list of non-empty strings")
    characters = [
        _entry(Character, raw, "characters.json", f"character #{i}")
        for i, raw in enumerate(
            _list(_read(root, "characters.json"), "characters", "characters.json")
        )
    ]
    _check_characters(characters, majors)
    guide = load_guide(root)
    if guide is not None:
        items = items + _guide_items(guide, items, rules)
    return KnowledgeData(
        majors, rules, redirects, items, [compact(p) for p in ignore], tags, characters, guide
    )


def _guide_items(
    guide: GuideData, items: list[KnownItem], rules: dict[str, DisposalRule]
) -> list[KnownItem]:
    """The guide's new items as ``KnownItem``s; checks names, aliases and references."""
    known = {item.name for item in items}
    claimed = {compact(a): i.name for i in items for a in (i.name, *i.aliases)}
    added: list[KnownItem] = []
    seen: set[str] = set()
    for entry in guide.items:
        where = f"guide: {entry.name!r}"
        if entry.name in seen:
            raise KnowledgeDataError(f"{where}: listed twice")
        seen.add(entry.name)
        if entry.name in known:
            if entry.aliases or entry.minor or entry.secondary:
                raise KnowledgeDataError(f"{where}: aliases/minor of items.json items stay there")
            continue
        if entry.group is None or entry.minor is None:
            raise KnowledgeDataError(f"{where}: a new item needs 'group' and 'minor'")
        middle = guide.groups[entry.group].middle
        if middle not in rules:
            raise KnowledgeDataError(f"{where}: group {entry.group!r} names unknown {middle!r}")
        for alias in dict.fromkeys([entry.name, *entry.aliases]):
            owner = claimed.setdefault(compact(alias), entry.name)
            if owner != entry.name:
                raise KnowledgeDataError(f"{where}: alias {alias!r} is already used by {owner!r}")
        rule = rules[middle]
        added.append(
            KnownItem(
                name=entry.name,
                major=rule.major_category,
                middle=middle,
                minor=entry.minor,
                aliases=tuple(dict.fromkeys(entry.aliases)),
                secondary=entry.secondary,
            )
        )
    names = known | {item.name for item in added}
    targets = [t for e in guide.items for t in e.options.values()]
    targets += [r.redirect for m in guide.modifiers for r in m.rules if r.redirect]
    targets += [name for m in guide.modifiers for r in m.rules for name in r.items]
    for target in targets:
        if target not in names:
            raise KnowledgeDataError(f"guide: unknown item {target!r} named by an option/redirect")
    return added


def _read(root: Path, name: str) -> dict[str, Any]:
    path = root / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeDataError(f"{name}: file not found at {path}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KnowledgeDataError(f"{name}: not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise KnowledgeDataError(f"{name}: the top level must be a JSON object")
    return data


def _list(data: dict[str, Any], key: str, file: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or not value:
        raise KnowledgeDataError(f"{file}: {key!r} must be a non-empty list")
    return value


def _entry(model: type[M], raw: Any, file: str, where: str) -> M:
    if isinstance(raw, dict) and isinstance(raw.get("name") or raw.get("code"), str):
        where = f"{where} {raw.get('name') or raw.get('code')!r}"
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(entry)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise KnowledgeDataError(f"{file}: {where}: {problems}") from exc


def _unique(values: list[str], file: str, what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise KnowledgeDataError(f"{file}: duplicate {what} {value!r}")
        seen.add(value)


def _categories(
    data: dict[str, Any], tags: dict[str, SituationTag]
) -> tuple[list[tuple[str, str, list[str]]], dict[str, DisposalRule], dict[str, dict[str, str]]]:
    majors: list[tuple[str, str, list[str]]] = []
    rules: dict[str, DisposalRule] = {}
    redirects: dict[str, dict[str, str]] = {}
    for i, raw_major in enumerate(_list(data, "majors", "categories.json")):
        major = _entry(_Major, raw_major, "categories.json", f"major #{i}")
        names: list[str] = []
        for j, raw_middle in enumerate(major.middles):
            middle = _entry(_Middle, raw_middle, "categories.json", f"{major.name} › middle #{j}")
            if middle.name in rules:
                raise KnowledgeDataError(f"categories.json: duplicate middle {middle.name!r}")
            for tag in [*middle.tag_issues, *middle.tag_redirects]:
                if tag not in tags:
                    raise KnowledgeDataError(
                        f"categories.json: {middle.name!r} refers to unknown situation tag {tag!r}"
                    )
            rules[middle.name] = DisposalRule(
                major_category=major.name,
                middle_category=middle.name,
                description=middle.description,
                steps=middle.steps,
                not_accepted=middle.not_accepted,
                notes=middle.notes,
                situation_issues=_issues(major.name, middle, tags),
            )
            redirects[middle.name] = dict(middle.tag_redirects)
            names.append(middle.name)
        majors.append((major.name, major.description, names))
    _unique([m[0] for m in majors], "categories.json", "major")
    for required in (RECYCLABLE, UNCLASSIFIED):
        if required not in {m[0] for m in majors}:
            raise KnowledgeDataError(f"categories.json: major category {required!r} is missing")
    return majors, rules, redirects


def _issues(major: str, middle: _Middle, tags: dict[str, SituationTag]) -> dict[str, str]:
    """Effective insufficiency per tag: the middle's override, else the tag's default for recyclables."""
    issues: dict[str, str] = {}
    for code, tag in tags.items():
        if tag.informational:
            continue
        issue = (
            middle.tag_issues[code]
            if code in middle.tag_issues
            else (tag.issue if major == RECYCLABLE else None)
        )
        if issue:
            issues[code] = issue
    return issues


def _items(
    data: dict[str, Any], rules: dict[str, DisposalRule], tags: dict[str, SituationTag]
) -> list[KnownItem]:
    groups = data.get("items")
    if not isinstance(groups, dict) or not groups:
        raise KnowledgeDataError("items.json: 'items' must be an object of middle → item list")
    items: list[KnownItem] = []
    claimed: dict[str, str] = {}  # compact alias → item name
    for middle, entries in groups.items():
        if middle not in rules:
            raise KnowledgeDataError(f"items.json: unknown middle category {middle!r}")
        if not isinstance(entries, list):
            raise KnowledgeDataError(f"items.json: {middle!r} must be a list of items")
        rule = rules[middle]
        for i, raw in enumerate(entries):
            entry = _entry(_Item, raw, "items.json", f"{middle} › item #{i}")
            where = f"items.json: {middle} › {entry.name!r}"
            for tag in entry.tags:
                if tag not in tags:
                    raise KnowledgeDataError(f"{where}: unknown situation tag {tag!r}")
                if tag in rule.situation_issues:
                    # a default tag must never block the reward of a clean item
                    raise KnowledgeDataError(
                        f"{where}: default tag {tag!r} is an issue for {middle}"
                    )
            for alias in dict.fromkeys([entry.name, *entry.aliases]):
                key = compact(alias)
                if not key:
                    raise KnowledgeDataError(f"{where}: alias {alias!r} is empty once normalised")
                owner = claimed.setdefault(key, entry.name)
                if owner != entry.name:
                    raise KnowledgeDataError(
                        f"{where}: alias {alias!r} is already used by {owner!r}"
                    )
            items.append(
                KnownItem(
                    name=entry.name,
                    major=rule.major_category,
                    middle=middle,
                    minor=entry.minor,
                    aliases=tuple(dict.fromkeys(entry.aliases)),
                    default_tags=tuple(entry.tags),
                    secondary=entry.secondary,
                    note=entry.note,
                )
            )
    _unique([item.name for item in items], "items.json", "item name")
    return items


def _check_characters(
    characters: list[Character], majors: list[tuple[str, str, list[str]]]
) -> None:
    _unique([c.code for c in characters], "characters.json", "character code")
    _unique([c.name for c in characters], "characters.json", "character name")
    defaults = [c for c in characters if c.is_default]
    if len(defaults) != 1 or defaults[0].match_label is not None:
        raise KnowledgeDataError(
            "characters.json: exactly one default character, without match_label"
        )
    recyclable = next(m[2] for m in majors if m[0] == RECYCLABLE)
    labels = [c.match_label for c in characters if not c.is_default]
    for character in characters:
        if not character.is_default and character.match_label not in recyclable:
            raise KnowledgeDataError(
                f"characters.json: {character.name!r}: match_label {character.match_label!r} "
                f"is not a middle category of {RECYCLABLE}"
            )
    for middle in recyclable:
        if labels.count(middle) != 1:
            raise KnowledgeDataError(f"characters.json: {middle!r} needs exactly one character")
