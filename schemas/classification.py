"""Classification of an item in the Korean separate-disposal taxonomy (DOMAIN.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

RECYCLABLE = "재활용폐기물"
UNCLASSIFIED = "미분류"


class Classification(BaseModel):
    """major → middle → minor category of one item."""

    model_config = ConfigDict(frozen=True)

    major_category: str
    middle_category: str = ""
    minor_category: str = ""

    @property
    def is_unclassified(self) -> bool:
        return self.major_category == UNCLASSIFIED


class ScanAnswer(BaseModel):
    """The structured output of the answer stage."""

    model_config = ConfigDict(frozen=True)

    disposal_steps: dict[str, str] = Field(default_factory=dict)
    insufficiencies: list[str] = Field(default_factory=list)
    user_answer: str = ""
