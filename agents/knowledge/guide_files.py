"""Reading and validating the item-level guide under ``data/guide/``.

- ``groups.json`` — disposal step sets of one sub-family ("투명 페트병", "펌프 용기", "젤 아이스팩"),
  each with its middle category, where it goes and the source it was written from.
- ``minor_groups.json`` — the group of an ``items.json`` item by ``middle/minor`` (``middle/*``
  for the rest of a middle category).
- ``items_*.jsonl`` — one item a line: a new item (with ``group``, ``minor``, ``aliases``) or
  item-level facts for an ``items.json`` item (same ``name``, no ``aliases``): own ``steps``,
  a ``caveat``, a ``hazard`` (blocks a reward unless ``cleared_by`` is said), a question with
  ``options`` when the material is ambiguous, ``has`` (conditions the noun already implies, so
  an adjective cannot override it: 종이컵 has ``coated``), ``bulky`` (large ones are 대형폐기물).
  An item with a hazard and ``options`` lists the safe answer last: saying ``cleared_by``
  ("다 쓴") picks it ("페인트통 다 쓴 거" → 빈 페인트통).
- ``modifiers.json`` — the condition rules (see ``agents.knowledge.resolve``).
- ``districts.json`` — per-district notes (Seoul's 25 구) for a few topics.
- ``sources.json`` — where each family's facts come from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.knowledge.errors import KnowledgeDataError

_STRICT = ConfigDict(frozen=True, extra="forbid")
M = TypeVar("M", bound=BaseModel)


class Source(BaseModel):
    model_config = _STRICT

    title: str = Field(min_length=1)
    url: str
    checked: str


class Group(BaseModel):
    model_config = _STRICT

    middle: str = Field(min_length=1)
    where: str = Field(min_length=1)
    source: str = Field(min_length=1)
    steps: list[str] = Field(min_length=1)
    not_accepted: list[str] = Field(default_factory=list)


class GuideItem(BaseModel):
    """Item-level facts; ``group``/``minor``/``aliases`` only for items new in the guide."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    group: str | None = None
    minor: str | None = None
    aliases: list[str] = Field(default_factory=list)
    secondary: bool = False
    steps: list[str] = Field(default_factory=list)
    caveat: str | None = None
    hazard: str | None = None
    hazard_cues: list[str] = Field(default_factory=list)
    cleared_by: list[str] = Field(default_factory=list)
    ask: str | None = None
    options: dict[str, str] = Field(default_factory=dict)
    has: list[str] = Field(default_factory=list)
    bulky: bool = False


class ModifierRule(BaseModel):
    model_config = _STRICT

    middles: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    items: list[str] = Field(default_factory=list)  # items the rule is for, whatever their group
    groups_except: list[str] = Field(default_factory=list)
    bulky_items: bool = False
    redirect: str | None = None
    keep_name: bool = False
    group: str | None = None
    why: str | None = None
    caveat: str | None = None
    blocking: bool = False
    step: str | None = None


class Modifier(BaseModel):
    model_config = _STRICT

    code: str = Field(pattern=r"^[a-z_]+$")
    label: str = Field(min_length=1)
    cues: list[str] = Field(min_length=1)
    negations: list[str] = Field(default_factory=list)
    rules: list[ModifierRule] = Field(min_length=1)


class DistrictNote(BaseModel):
    model_config = _STRICT

    text: str = Field(min_length=1)
    source: str | None = None
    verified: bool = False


class Topic(BaseModel):
    model_config = _STRICT

    items: list[str] = Field(default_factory=list)
    middles: list[str] = Field(default_factory=list)
    default: str = Field(min_length=1)


@dataclass(frozen=True)
class Districts:
    city: str
    help: str
    topics: dict[str, Topic]
    notes: dict[str, dict[str, DistrictNote]]  # district → topic → note (overrides)


@dataclass(frozen=True)
class GuideData:
    sources: dict[str, Source]
    groups: dict[str, Group]
    minor_groups: dict[str, str]
    items: list[GuideItem]
    modifiers: list[Modifier]
    districts: Districts


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeDataError(f"guide/{path.name}: file not found") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KnowledgeDataError(f"guide/{path.name}: not valid UTF-8 JSON: {exc}") from exc


def _model(model: type[M], raw: Any, where: str) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(entry)'}: {e['msg']}" for e in exc.errors()
        )
        raise KnowledgeDataError(f"{where}: {problems}") from exc


def load_guide(root: Path) -> GuideData | None:
    """The guide under ``root/guide`` (``None`` when the directory is absent)."""
    base = root / "guide"
    if not base.is_dir():
        return None
    sources = {
        k: _model(Source, v, f"guide/sources.json: {k!r}")
        for k, v in _json(base / "sources.json")["sources"].items()
    }
    groups = {
        k: _model(Group, v, f"guide/groups.json: {k!r}")
        for k, v in _json(base / "groups.json")["groups"].items()
    }
    for key, group in groups.items():
        if group.source not in sources:
            raise KnowledgeDataError(f"guide/groups.json: {key!r}: unknown source {group.source!r}")
    minor_groups: dict[str, str] = _json(base / "minor_groups.json")["minor_groups"]
    for key, gid in minor_groups.items():
        if gid not in groups:
            raise KnowledgeDataError(f"guide/minor_groups.json: {key!r}: unknown group {gid!r}")
    items: list[GuideItem] = []
    for path in sorted(base.glob("items_*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise KnowledgeDataError(f"guide/{path.name}:{n}: not valid JSON: {exc}") from exc
            item = _model(GuideItem, raw, f"guide/{path.name}:{n}")
            if item.group is not None and item.group not in groups:
                raise KnowledgeDataError(f"guide/{path.name}:{n}: unknown group {item.group!r}")
            items.append(item)
    modifiers = [
        _model(Modifier, raw, f"guide/modifiers.json: modifier #{i}")
        for i, raw in enumerate(_json(base / "modifiers.json")["modifiers"])
    ]
    for modifier in modifiers:
        for rule in modifier.rules:
            for gid in (*rule.groups, *rule.groups_except, *([rule.group] if rule.group else [])):
                if gid not in groups:
                    raise KnowledgeDataError(
                        f"guide/modifiers.json: {modifier.code!r}: unknown group {gid!r}"
                    )
    raw_d = _json(base / "districts.json")
    topics = {
        k: _model(Topic, v, f"guide/districts.json: topic {k!r}")
        for k, v in raw_d["topics"].items()
    }
    notes: dict[str, dict[str, DistrictNote]] = {}
    for district, overrides in raw_d["districts"].items():
        notes[district] = {}
        for topic, note in overrides.items():
            if topic not in topics:
                raise KnowledgeDataError(
                    f"guide/districts.json: {district}: unknown topic {topic!r}"
                )
            notes[district][topic] = _model(DistrictNote, note, f"guide/districts.json: {district}")
    districts = Districts(city=raw_d["city"], help=raw_d["help"], topics=topics, notes=notes)
    return GuideData(sources, groups, minor_groups, items, modifiers, districts)
