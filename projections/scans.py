"""The ``scans`` read model: one row per scan job, what ``GET /scan/{job}/result`` serves.

A deleted user's free text (``user_input``) and image URL are scrubbed from their scans; ids,
statuses, results and timestamps stay, so statistics do not change. Scans and the deletion come
from different shards, projected in any order, so they meet on the user's ``scan_users`` row: the
deletion updates it (an exclusive row lock), and a batch of new scans ends by making sure the
row exists, then share-locking it and scrubbing its own rows if the user is erased
(``Changes.execute_last``). Whichever commits second sees the other's writes; batches of
scans lock rows in share mode only, so they never wait for each other.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

from projections.changes import Changes
from projections.projection import Projection, event_time
from readmodels import tables
from schemas.envelope import EnvelopeView
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
from schemas.users import UserDeleted

M = TypeVar("M", bound=Message)

SCANS = Projection("scans", tables.SCANS.code_version, tables.SCANS, shared=frozenset({"scan_users"}))

_SCRUB = (
    "UPDATE {scans} s SET user_input = NULL, image_url = NULL FROM {scan_users} u"
    " WHERE u.user_id = s.user_id AND u.erased_at IS NOT NULL"
    " AND (s.image_url IS NOT NULL OR s.user_input IS NOT NULL)"
)
# The end of a batch with new scans, three statements: each later one's snapshot must include
# what a concurrent deletion committed while the earlier one waited for it. The first two take
# the users of the new scans (``$1``: their ``ScanQueued.user_id``s, the only value a scan's
# ``user_id`` ever takes), the scrub the new scans' job ids. Looking the users up by job id in
# ``scans`` instead (``SELECT DISTINCT user_id … WHERE job_id = ANY($1)``) cost 2.1 and 1.9 ms
# per batch of 500 new scans (a bitmap scan of ``scans`` each), against 0.85 and 0.8 ms.
_USERS = "SELECT unnest($1::text[])"
NEW_SCANS = (
    f"INSERT INTO {{scan_users}} (user_id) {_USERS} ORDER BY 1 ON CONFLICT DO NOTHING",
    f"SELECT 1 FROM {{scan_users}} WHERE user_id IN ({_USERS}) ORDER BY user_id FOR SHARE",
    _SCRUB + " AND s.job_id = ANY($1::text[])",
)
SCRUB_USERS = _SCRUB + " AND s.user_id = ANY($1::text[])"


# Sorted keys, as ``json.dumps(value, ensure_ascii=False, sort_keys=True)`` wrote them, in
# orjson's compact form: the same JSON value (readers parse it; ``json`` columns keep the
# text), a fifth of the cost of the standard library's encoder. The text of the ``json``
# columns changed with it, so the tables' code version went to 3: ``eco2 up`` rebuilds an older
# release's rows, and ``verify`` (md5 of each row's text) compares like with like.
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # what orjson refuses (integers beyond 64 bits, non-text keys)
        return _ENCODER.encode(value)


# Unix times that ``datetime.fromtimestamp(at, UTC)`` surely turns into a datetime (years 1 to
# 9999, a day's margin at each end); ``Changes`` converts them when the batch is written.
_EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def _plain(model: BaseModel) -> Any:
    """``model.model_dump(mode="json")`` without its wrapper (a third of its time; an answer's
    is dumped once per event: most are distinct)."""
    return model.__pydantic_serializer__.to_python(model, mode="json")


def _touch(
    changes: Changes, envelope: EnvelopeView, values: dict[str, Any], *, stamped: str = ""
) -> None:
    # One dict per event, handed to the row as it is: the version and time join the event's
    # columns (every event of a job updates its row; this is the fold's per-event cost).
    # ``stamped``: one more column that takes the event's time. The time is the Unix time,
    # which ``Changes`` turns into the ``event_time`` datetime for the row's last value only
    # (``datetime.fromtimestamp`` per event was a quarter of the handlers' cost).
    at: float | datetime = envelope.timestamp
    if not _EARLIEST < envelope.timestamp < _LATEST:  # NaN too: a time no datetime has fails
        at = event_time(envelope)  # at its event, as it did, not at the batch's write
    values["version"] = envelope.version
    values["updated_at"] = at
    if stamped:
        values[stamped] = at
    changes.set_columns("scans", envelope.aggregate_id, values)


_QUEUED, _DONE = Stage.QUEUED.value, Stage.DONE.value
# A stage's value by member: a dict lookup (``str`` hashing) instead of ``Enum.value``, a
# Python-level descriptor (0.06 against 0.22 µs; two in five of a scan's events).
_STAGE_VALUE = {stage: stage.value for stage in Stage}
_QUEUED_PROGRESS, _DONE_PROGRESS = PROGRESS[Stage.QUEUED], PROGRESS[Stage.DONE]
_VISION_PROGRESS, _RULE_PROGRESS = PROGRESS[Stage.VISION], PROGRESS[Stage.RULE]
_ANSWER_PROGRESS, _REWARD_PROGRESS = PROGRESS[Stage.ANSWER], PROGRESS[Stage.REWARD]


@SCANS.on(ScanQueued)
def _queued(changes: Changes, event: ScanQueued, envelope: EnvelopeView) -> None:
    values = {
        "user_id": event.user_id,
        "status": "queued",
        "stage": _QUEUED,
        "progress": _QUEUED_PROGRESS,
        "image_url": event.image_url,
        "user_input": event.user_input,
    }
    _touch(changes, envelope, values, stamped="created_at")
    add_user, lock_user, scrub = NEW_SCANS
    changes.execute_last(add_user, event.user_id)
    changes.execute_last(lock_user, event.user_id)
    changes.execute_last(scrub, envelope.aggregate_id)


@SCANS.on(UserDeleted)
def _user_deleted(changes: Changes, event: UserDeleted, envelope: EnvelopeView) -> None:
    changes.set("scan_users", envelope.aggregate_id, erased_at=event_time(envelope))
    changes.execute_last(SCRUB_USERS, envelope.aggregate_id)


@SCANS.on(StageStarted)
def _stage(changes: Changes, event: StageStarted, envelope: EnvelopeView) -> None:
    _touch(
        changes,
        envelope,
        {"status": "processing", "stage": _STAGE_VALUE[event.stage], "progress": event.progress},
    )


# The JSON text of a message's column, by message: the reader shares one message object among
# the events whose data text repeats (``ShardReader.decode``), as a classification, a rule or a
# reward mostly does (11, 11 and 21 distinct in 10,000 synthetic scans), so each is dumped
# once, not once per event: the vision handler took 2.0 µs instead of 3.1, the reward's 2.1
# instead of 3.0, the rule's 2.0 instead of 2.2. (Not answers: most are distinct, and the
# look-up made their handler slower.) Keyed by the object's id, which the entry's own
# reference keeps from being reused; emptied when full.
_DUMPED: dict[int, tuple[Message, str | None]] = {}
_DUMPED_ENTRIES = 1024  # the repeating ones are a few dozen: this bounds the memory kept


def _dumped(event: M, dump: Callable[[M], str | None]) -> str | None:
    known = _DUMPED.get(id(event))
    if known is not None and known[0] is event:
        return known[1]
    text = dump(event)
    if len(_DUMPED) >= _DUMPED_ENTRIES:
        _DUMPED.clear()
    _DUMPED[id(event)] = (event, text)
    return text


def _vision_json(event: VisionCompleted) -> str | None:
    return _dump({
        "classification": _plain(event.classification),
        "situation_tags": event.situation_tags,
        "confidence": event.confidence,
        "question": event.question,
    })


def _rule_json(event: RuleCompleted) -> str | None:
    return _dump(event.disposal_rules)


def _reward_json(event: RewardCompleted) -> str | None:
    return _dump(None if event.reward is None else _plain(event.reward))


@SCANS.on(VisionCompleted)
def _vision(changes: Changes, event: VisionCompleted, envelope: EnvelopeView) -> None:
    classification = _dumped(event, _vision_json)
    _touch(changes, envelope, {"classification": classification, "progress": _VISION_PROGRESS})


@SCANS.on(RuleCompleted)
def _rule(changes: Changes, event: RuleCompleted, envelope: EnvelopeView) -> None:
    _touch(
        changes,
        envelope,
        {
            "disposal_rules": _dumped(event, _rule_json),
            "rule_found": event.disposal_rules is not None,
            "progress": _RULE_PROGRESS,
        },
    )


@SCANS.on(AnswerCompleted)
def _answer(changes: Changes, event: AnswerCompleted, envelope: EnvelopeView) -> None:
    _touch(
        changes,
        envelope,
        {
            "answer": _dump(_plain(event.answer)),
            "rule_found": event.rule_found,
            "progress": _ANSWER_PROGRESS,
        },
    )


@SCANS.on(RewardCompleted)
def _reward(changes: Changes, event: RewardCompleted, envelope: EnvelopeView) -> None:
    _touch(changes, envelope, {"reward": _dumped(event, _reward_json), "progress": _REWARD_PROGRESS})


@SCANS.on(ScanCompleted)
def _completed(changes: Changes, event: ScanCompleted, envelope: EnvelopeView) -> None:
    values = {"status": "completed", "stage": _DONE, "progress": _DONE_PROGRESS}
    _touch(changes, envelope, values, stamped="finished_at")


@SCANS.on(ScanFailed)
def _failed(changes: Changes, event: ScanFailed, envelope: EnvelopeView) -> None:
    error = {"stage": _STAGE_VALUE[event.stage], "message": event.error, "code": event.code}
    values = {"status": "failed", "stage": _DONE, "error": _dump(error)}
    _touch(changes, envelope, values, stamped="finished_at")
