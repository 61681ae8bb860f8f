"""What a job's SSE clients see: one pure fold from the job's events to live messages.

``apply_event(view, envelope, message)`` folds one event of a job into its ``JobView`` and
returns the SSE message it produces (or None for an event clients do not see). The snapshot
projector, the SSE catch-up from the job's stream and the benchmark all use it, so a message
replayed from the log is byte-for-byte the one that was published live.

Which message class produces which message is a dispatch table keyed by class; chat turns
register their own reducers with ``live_mapping`` (and extra terminal stages with
``TERMINAL_STAGES``) without touching this module's scan mapping.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from schemas.envelope import Envelope
from schemas.registry import Message
from schemas.scan import (
    PROGRESS,
    AnswerCompleted,
    RewardCompleted,
    RuleCompleted,
    ScanCompleted,
    ScanFailed,
    ScanQueued,
    Stage,
    StageStarted,
    VisionCompleted,
)

# The SSE data text of every message (the same bytes live and replayed). One encoder for all:
# ``json.dumps`` with options builds a new ``JSONEncoder`` per call, more than half the cost of
# encoding a message.
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# Stages after which a stream ends (chat adds "error" when it registers its mapping).
TERMINAL_STAGES: set[str] = {Stage.DONE.value}


def is_terminal(stage: str) -> bool:
    return stage in TERMINAL_STAGES


class JobView(BaseModel):
    """A job folded from its events: the content of ``{tag}:state:<job>``."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    kind: str = ""  # aggregate type, e.g. scan_job
    user_id: str | None = None
    version: int = 0  # the last event folded in
    stage: str | None = None
    status: str | None = None
    progress: int = 0
    facts: dict[str, Any] = Field(default_factory=dict)  # what reducers remember
    result: dict[str, Any] | None = None  # the job's final result once terminal
    terminal: bool = False
    updated_at: float = 0.0
    last: dict[str, Any] | None = None  # the last SSE message


@dataclass(frozen=True)
class Transition:
    """What one event does to a job, as a reducer reports it."""

    stage: str
    status: str  # started | completed | failed | waiting | streaming
    progress: int | None = None  # None: unchanged
    result: Any = None
    message: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    user_id: str | None = None
    final: dict[str, Any] | None = None  # the job's result when this ends it
    extra: Mapping[str, Any] = field(default_factory=dict)  # more top-level fields (chat tokens)


@dataclass(frozen=True)
class LiveEvent:
    """One SSE message: ``id`` = version, ``event`` = stage, ``data`` = JSON text."""

    job_id: str
    version: int
    stage: str
    data: str
    appended_at: float = 0.0  # when its event was recorded (Unix seconds; 0: unknown)

    @property
    def terminal(self) -> bool:
        return is_terminal(self.stage)


Reducer = Callable[[JobView, Envelope, Any], Transition]
R = TypeVar("R", bound=Reducer)
_REDUCERS: dict[type[Message], Reducer] = {}


def live_mapping(cls: type[Message]) -> Callable[[R], R]:
    """Register the reducer that turns events of ``cls`` into a transition."""

    def register(reducer: R) -> R:
        _REDUCERS[cls] = reducer
        return reducer

    return register


def mapped_classes() -> frozenset[type[Message]]:
    """Every message class that produces SSE messages."""
    return frozenset(_REDUCERS)


def apply_event(
    view: JobView | None, envelope: Envelope, message: Message
) -> tuple[JobView, LiveEvent | None]:
    """Fold ``message`` (the event at ``envelope.version``) into ``view``; its SSE message."""
    if view is None:
        view = JobView(job_id=envelope.aggregate_id, kind=envelope.aggregate_type)
    reducer = _REDUCERS.get(type(message))
    if reducer is None:
        return view.model_copy(update={"version": envelope.version}), None
    t = reducer(view, envelope, message)
    stage = str(t.stage)  # reducers may pass a StrEnum member
    progress = view.progress if t.progress is None else t.progress
    payload: dict[str, Any] = {
        "job_id": view.job_id,
        "stage": stage,
        "status": t.status,
        "seq": envelope.version,
        "ts": envelope.timestamp,
        "progress": progress,
        "result": t.result,
    }
    if t.message is not None:
        payload["message"] = t.message
    payload.update(t.extra)
    terminal = is_terminal(stage)
    new = view.model_copy(
        update={
            "user_id": t.user_id or view.user_id or envelope.metadata.user_id,
            "version": envelope.version,
            "stage": stage,
            "status": t.status,
            "progress": progress,
            "facts": {**view.facts, **t.facts} if t.facts else view.facts,
            "result": t.final if t.final is not None else view.result,
            "terminal": view.terminal or terminal,
            "updated_at": envelope.timestamp,
            "last": payload,
        }
    )
    data = _ENCODE(payload)
    return new, LiveEvent(view.job_id, envelope.version, stage, data, envelope.timestamp)


def fold(events: Iterable[tuple[Envelope, Message]], view: JobView | None = None) -> JobView | None:
    """``apply_event`` over ``events`` in order."""
    for envelope, message in events:
        view, _ = apply_event(view, envelope, message)
    return view


# -- the scan job ------------------------------------------------------------------------

COMPLETED_MESSAGE = "분석이 완료되었습니다."


def scan_result(view: JobView, *, status: str, message: str, error: dict[str, Any] | None) -> dict[str, Any]:
    """The API's scan result (``GET /scan/{job}/result``) from what the job has recorded."""
    facts = view.facts
    return {
        "task_id": view.job_id,
        "status": status,
        "message": message,
        "pipeline_result": {
            "classification_result": {
                "classification": facts.get("classification"),
                "situation_tags": facts.get("situation_tags", []),
            },
            "disposal_rules": facts.get("disposal_rules"),
            "final_answer": facts.get("final_answer"),
        },
        "reward": facts.get("reward"),
        "error": error,
    }


@live_mapping(ScanQueued)
def _queued(view: JobView, envelope: Envelope, m: ScanQueued) -> Transition:
    # a model that could not be served is said on the queued event (the default answers)
    result = None if m.model_fallback is None else {"model_fallback": {
        "requested": m.model, "used": m.served_model, "reason": m.model_fallback}}
    return Transition(
        Stage.QUEUED, "completed", PROGRESS[Stage.QUEUED], result, user_id=m.user_id,
        facts={"image_url": m.image_url},
    )


@live_mapping(StageStarted)
def _started(view: JobView, envelope: Envelope, m: StageStarted) -> Transition:
    return Transition(m.stage, "started", m.progress)


@live_mapping(VisionCompleted)
def _vision(view: JobView, envelope: Envelope, m: VisionCompleted) -> Transition:
    classification = m.classification.model_dump(mode="json")
    result: dict[str, Any] = {
        "classification": classification,
        "situation_tags": list(m.situation_tags),
        "confidence": m.confidence,
    }
    if m.question:
        result["question"] = m.question
    facts = {"classification": classification, "situation_tags": list(m.situation_tags)}
    return Transition(Stage.VISION, "completed", PROGRESS[Stage.VISION], result, facts=facts)


@live_mapping(RuleCompleted)
def _rule(view: JobView, envelope: Envelope, m: RuleCompleted) -> Transition:
    result = {"disposal_rules": m.disposal_rules, "rule_found": m.disposal_rules is not None}
    return Transition(
        Stage.RULE, "completed", PROGRESS[Stage.RULE], result,
        facts={"disposal_rules": m.disposal_rules},
    )


@live_mapping(AnswerCompleted)
def _answer(view: JobView, envelope: Envelope, m: AnswerCompleted) -> Transition:
    answer = m.answer.model_dump(mode="json")
    return Transition(
        Stage.ANSWER, "completed", PROGRESS[Stage.ANSWER], {"final_answer": answer},
        facts={"final_answer": answer, "classification": m.classification.model_dump(mode="json")},
    )


@live_mapping(RewardCompleted)
def _reward(view: JobView, envelope: Envelope, m: RewardCompleted) -> Transition:
    reward = None
    if m.reward is not None:
        reward = {
            "name": m.reward.name,
            "dialog": m.reward.dialog,
            "match_reason": m.reward.match_reason,
            "type": m.reward.type,
            "code": m.reward.code,
            "newly_acquired": m.reward.newly_acquired,
        }
    result = {"reward": reward, "deferred": m.deferred}
    return Transition(
        Stage.REWARD, "completed", PROGRESS[Stage.REWARD], result, facts={"reward": reward}
    )


@live_mapping(ScanCompleted)
def _completed(view: JobView, envelope: Envelope, m: ScanCompleted) -> Transition:
    summary = scan_result(view, status="completed", message=COMPLETED_MESSAGE, error=None)
    return Transition(
        Stage.DONE, "completed", PROGRESS[Stage.DONE], summary, user_id=m.user_id, final=summary
    )


@live_mapping(ScanFailed)
def _failed(view: JobView, envelope: Envelope, m: ScanFailed) -> Transition:
    error = {"stage": m.stage.value, "code": m.code, "message": m.error}
    summary = scan_result(view, status="failed", message=m.error, error=error)
    return Transition(
        Stage.DONE, "failed", None, {"error": error}, message=m.error, user_id=m.user_id,
        final=summary,
    )


# The chat turn's mapping lives with the chat projections; importing it registers it.
from projections import chat as _chat  # noqa: E402, F401
