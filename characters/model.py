"""The collectible character: one model for the catalog, the reward match, the gRPC service and
the read side."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NonEmpty = Annotated[str, Field(min_length=1)]


class Character(BaseModel):
    """A collectible character; ``match_label`` is the middle category it rewards (None for the
    default one, 이코, which every user owns from the start)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    code: str = Field(min_length=1, pattern=r"^char-[a-z]+$")
    name: NonEmpty
    type: NonEmpty
    dialog: NonEmpty
    match_label: str | None = None
    is_default: bool = Field(default=False, alias="default")
