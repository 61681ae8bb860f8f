"""What the knowledge base hands out: items, rules, retrieval hits, tags (characters are
``characters.Character``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.classification import Classification

_FROZEN = ConfigDict(frozen=True, extra="forbid")
NonEmpty = Annotated[str, Field(min_length=1)]


class SituationTag(BaseModel):
    """A situation the user can describe ("라벨 안 뗀") and the phrases that reveal it.

    Cues are matched on the compact text (no spaces): ``cues`` win outright, then any of
    ``negations`` ("라벨 뗐어요") cancels the tag, then ``weak_cues`` ("라벨") set it.
    ``issue`` is the default insufficiency for recyclables; a middle category may override it.
    ``parts``: the names of the part whose state the tag is ("뚜껑"): a text that tells it, on
    or off ("소주병 뚜껑 뺐어요"), asks about the whole before it when the state matters for
    that whole's category (a glass bottle's cap), not about the part.
    """

    model_config = _FROZEN

    code: str = Field(min_length=1, pattern=r"^[a-z_]+$")
    label: NonEmpty
    cues: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()
    weak_cues: tuple[str, ...] = ()
    issue: str | None = None
    informational: bool = False
    parts: tuple[str, ...] = ()


class KnownItem(BaseModel):
    """A named item (minor category or everyday thing) and how people write it."""

    model_config = _FROZEN

    name: str
    major: str
    middle: str
    minor: str
    aliases: tuple[str, ...] = ()
    default_tags: tuple[str, ...] = ()
    secondary: bool = False  # a part or residue ("송장", "뚜껑"): loses to any primary item named
    note: str | None = None

    @property
    def classification(self) -> Classification:
        return Classification(
            major_category=self.major, middle_category=self.middle, minor_category=self.minor
        )


class ItemMatch(BaseModel):
    """The item a text names, how it was found and how sure we are (0..1)."""

    model_config = _FROZEN

    item: KnownItem
    classification: Classification
    default_tags: list[str]
    score: float
    matched: str  # the alias (or window) that matched
    method: Literal["exact", "substring", "fuzzy"]


class ItemGuide(BaseModel):
    """Item-level facts of one answer: the user's item, where it goes and why, what to check
    first (``caveats``; ``blocking`` ones are insufficiencies), its own steps ("이름: 내용")."""

    model_config = ConfigDict(extra="forbid")

    item: str
    subject: str
    category: str = ""  # "재활용폐기물 › 무색페트병"
    where: str
    steps: list[str]
    caveats: list[str] = Field(default_factory=list)
    blocking: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    noted: list[str] = Field(default_factory=list)  # conditions that only added a caveat
    why: list[str] = Field(default_factory=list)
    question: str | None = None
    options: list[str] = Field(default_factory=list)
    not_accepted: list[str] = Field(default_factory=list)
    source: str = ""
    district_note: str | None = None


class DisposalRule(BaseModel):
    """How to dispose of one middle category; ``model_dump()`` is the API's ``disposal_rules``.

    ``situation_issues`` maps a situation tag to the insufficiency it causes for this category
    (tags absent from the map are fine as they are).
    """

    model_config = _FROZEN

    major_category: str
    middle_category: str
    minor_category: str = ""
    description: str = ""
    steps: dict[str, str]
    not_accepted: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    situation_issues: dict[str, str] = Field(default_factory=dict)
    item_guide: ItemGuide | None = None  # item-level answer facts, when the item is known

    @property
    def classification(self) -> Classification:
        return Classification(
            major_category=self.major_category,
            middle_category=self.middle_category,
            minor_category=self.minor_category,
        )


class RuleHit(BaseModel):
    """One retrieval result for chat RAG: an item or a category, with its rule and a summary."""

    model_config = _FROZEN

    kind: Literal["item", "category"]
    title: str
    score: float
    classification: Classification
    rule: DisposalRule
    text: str


class CategorySummary(BaseModel):
    """A top-level (major) category and its middle categories."""

    model_config = _FROZEN

    name: str
    description: str
    middles: list[str]
