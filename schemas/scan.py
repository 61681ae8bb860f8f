"""Scan: the command and the events of a scan job's aggregate (``scan_job``, id = job id).

Stage order: queued → vision → rule → answer → reward → done. Each stage emits ``StageStarted``
then its own completed event; a permanent failure emits ``ScanFailed`` (a failed ``done``).
``ScanCompleted`` (the successful ``done``) is appended by the reward handler, so reward always
completes before done.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.classification import Classification, ScanAnswer
from schemas.registry import Command, Event, message

SCAN_JOB = "scan_job"


class Stage(StrEnum):
    QUEUED = "queued"
    VISION = "vision"
    RULE = "rule"
    ANSWER = "answer"
    REWARD = "reward"
    DONE = "done"


# Progress (percent) reached when each stage completes.
PROGRESS = {
    Stage.QUEUED: 0,
    Stage.VISION: 40,
    Stage.RULE: 55,
    Stage.ANSWER: 85,
    Stage.REWARD: 95,
    Stage.DONE: 100,
}


@message("scan.requested")
class RequestScan(Command):
    """A user asked for a scan of an uploaded image (command; aggregate = job id)."""

    job_id: str
    user_id: str
    image_url: str
    user_input: str | None = Field(default=None, max_length=2000)
    model: str | None = None


class Reward(BaseModel):
    """A character shown to the user for a scan (part of an event, not a message)."""

    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    dialog: str
    match_reason: str
    type: str
    newly_acquired: bool = True


@message("scan.queued")
class ScanQueued(Event):
    user_id: str
    image_url: str
    user_input: str | None = None
    model: str | None = None  # what the client asked for
    # set when ``model`` cannot be served here: the model used instead and why
    served_model: str | None = None
    model_fallback: str | None = None

    @property
    def model_to_use(self) -> str | None:
        return self.served_model or self.model


@message("scan.stage_started")
class StageStarted(Event):
    stage: Stage
    progress: int


@message("scan.vision_completed")
class VisionCompleted(Event):
    classification: Classification
    situation_tags: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    question: str | None = None


@message("scan.rule_completed")
class RuleCompleted(Event):
    disposal_rules: dict[str, Any] | None  # None: no rule for this classification


@message("scan.answer_completed")
class AnswerCompleted(Event):
    user_id: str
    classification: Classification
    rule_found: bool
    answer: ScanAnswer


@message("scan.reward_completed")
class RewardCompleted(Event):
    reward: Reward | None
    deferred: bool = False  # the character service was unavailable; granted later


@message("scan.completed")
class ScanCompleted(Event):
    """The successful ``done``."""

    user_id: str


@message("scan.failed")
class ScanFailed(Event):
    """The failed ``done``: the client is told, never left waiting."""

    user_id: str
    stage: Stage
    error: str
    code: str = "scan_failed"
