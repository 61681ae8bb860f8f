"""The reward handler: ``AnswerCompleted`` → character ownership → ``reward`` → ``done``.

It runs as its own consumer group on the events log. Exactly-once effect under at-least-once
delivery comes from deterministic event ids:

- ownership is ``CharacterGranted`` on the user's aggregate with the id of (user, character), so
  two jobs or two deliveries can never grant the same character twice;
- the job's ``StageStarted(reward)``, ``RewardCompleted`` and ``ScanCompleted`` carry the ids of
  (job, step), so a redelivery re-appends nothing.

When the character service does not answer, ``RetryLater`` asks for the event again (on the
runner's time budget). For the first ``wait_s`` after the answer the job is left open, so a
short outage ends with the reward in the job; after that the job finishes now (``reward:
null``, ``deferred``: the client is not kept waiting) and a later retry grants the ownership.
"""

from __future__ import annotations

import logging
import time

import schemas
from characters import Character, CharacterService, CharacterServiceUnavailable
from commands.scan.job import ScanJob, job_event, load_job
from commands.users import load_user
from eventstore.causation import caused_by, effect_id
from eventstore.consumer import RetryLater
from eventstore.errors import ConcurrencyConflict
from eventstore.port import EventStorePort
from schemas.classification import RECYCLABLE
from schemas.envelope import Envelope
from schemas.registry import MessageRegistry
from schemas.scan import (
    PROGRESS,
    AnswerCompleted,
    Reward,
    RewardCompleted,
    ScanCompleted,
    Stage,
    StageStarted,
)
from schemas.users import USER, CharacterGranted

log = logging.getLogger(__name__)

# Optimistic-concurrency retries before giving the message back to the runner.
CONFLICT_ATTEMPTS = 8
REWARD_WAIT_S = 5.0  # default of ``wait_s`` (setting ECO2_REWARD_WAIT_S)


def reward_label(event: AnswerCompleted) -> str | None:
    """The match label a scan earns (DOMAIN.md), or None for no reward.

    A recyclable (재활용폐기물) with a rule found and an answer listing no insufficiencies earns
    the character whose match label is the middle category.
    """
    c = event.classification
    if c.major_category != RECYCLABLE or not event.rule_found or event.answer.insufficiencies:
        return None
    return c.middle_category.strip() or None


async def handle_answer_completed(
    envelope: Envelope,
    event: AnswerCompleted,
    *,
    store: EventStorePort,
    characters: CharacterService,
    registry: MessageRegistry = schemas.registry,
    wait_s: float = REWARD_WAIT_S,
) -> None:
    """Grant the scan's character (once per user) and finish the job with reward → done.

    While the character service is unavailable and the answer is younger than ``wait_s``,
    raise ``RetryLater`` with the job still open; later, finish it deferred and raise."""
    job_id = envelope.aggregate_id
    label = reward_label(event)
    reward: Reward | None = None
    unavailable: CharacterServiceUnavailable | None = None
    if label is not None:
        try:
            character = await characters.match(label)
        except CharacterServiceUnavailable as exc:
            unavailable = exc
        else:
            if character is not None:
                newly = await grant_character(
                    store,
                    event.user_id,
                    character,
                    job_id=job_id,
                    cause=envelope,
                    registry=registry,
                )
                reward = _reward(
                    character, label, list(event.answer.disposal_steps), newly_acquired=newly
                )

    rewarded = RewardCompleted(reward=reward, deferred=unavailable is not None)
    if unavailable is None:
        # The answer is the chain's last event: the job is not read, the finish is appended
        # right after the answer (a redelivery's append is a duplicate, or a conflict after
        # which ``_finish_job`` reads what follows the answer).
        await _finish_job(store, ScanJob(job_id, envelope.version), envelope, event, rewarded,
                          registry)
        return
    # Only what follows the answer matters here: reward, done, or a failure.
    job = await load_job(store, job_id, registry, after_version=envelope.version)
    if job.failed is not None:
        return
    if job.completed is None and time.time() - envelope.timestamp < wait_s:
        raise RetryLater(f"reward waiting for the character service: {unavailable}")
    await _finish_job(store, job, envelope, event, rewarded, registry)
    log.warning("reward of job %s deferred: %s", job_id, unavailable)
    raise RetryLater(f"reward deferred: {unavailable}")


async def _finish_job(
    store: EventStorePort,
    job: ScanJob,
    cause: Envelope,
    answer: AnswerCompleted,
    rewarded: RewardCompleted,
    registry: MessageRegistry,
) -> None:
    """Append reward started → reward completed → done once (reward always before done)."""
    finish = [
        (StageStarted(stage=Stage.REWARD, progress=PROGRESS[Stage.ANSWER]), "reward.started"),
        (rewarded, "reward"),
        (ScanCompleted(user_id=answer.user_id), "done"),
    ]
    metadata = caused_by(cause, answer.user_id)
    batch = [job_event(registry, job.job_id, step, message, metadata=metadata)
             for message, step in finish]
    for _ in range(CONFLICT_ATTEMPTS):
        if job.finished:
            return
        try:
            await store.append(batch, expected_version=job.version)
            return
        except ConcurrencyConflict:
            job = await load_job(store, job.job_id, registry, after_version=job.version)
    raise ConcurrencyConflict(job.job_id, None, job.version)


async def grant_character(
    store: EventStorePort,
    user_id: str,
    character: Character,
    *,
    job_id: str,
    cause: Envelope,
    registry: MessageRegistry = schemas.registry,
) -> bool:
    """Record that ``user_id`` owns ``character``, at most once ever.

    Returns whether this job is the one that acquired it (True also on a redelivery of the job
    that did), False when the user already owned it from another scan.
    """
    grant: Envelope | None = None  # built once it is needed: most scans find the grant

    for _ in range(CONFLICT_ATTEMPTS):
        user = await load_user(store, user_id, registry)
        owned = next((c for c in user.characters if c.code == character.code), None)
        if owned is not None:
            return owned.source_job_id == job_id
        grant = grant or registry.envelope(
            CharacterGranted(
                character_code=character.code, character_name=character.name,
                source_job_id=job_id,
            ),
            aggregate_id=user_id,
            aggregate_type=USER,
            metadata=caused_by(cause, user_id),
            id=effect_id("grant", user_id, character.code),
        )
        try:
            # At the version the state was folded to: a grant appended since is seen first.
            result = await store.append([grant], expected_version=user.version)
        except ConcurrencyConflict:
            continue  # the user's aggregate moved on: look again
        if not result.duplicate:
            return True
        # Granted by a concurrent delivery between our read and append, or by a newer release
        # in a shape this one cannot fold (a rolling deploy): read who did from the raw events.
        source = await _granted_by(store, user_id, character.code, registry)
        if source is not None:
            return source == job_id
    raise ConcurrencyConflict(user_id, None, None)


async def _granted_by(
    store: EventStorePort, user_id: str, code: str, registry: MessageRegistry
) -> str | None:
    """The job whose scan granted ``code`` to the user, read from the events' fields (no
    decoding); None when no grant is recorded."""
    granted = registry.wire_name(CharacterGranted)[0]
    for event in await store.read_aggregate(user_id):
        if event.type == granted and event.data.get("character_code") == code:
            return str(event.data.get("source_job_id") or "")
    return None


def reward_reason(label: str, steps: list[str]) -> str:
    """What the user did right, in the rule's own words: "무색페트병 규칙대로 비우기 · 라벨 떼기 ·
    찌그러뜨리기를 하고 배출했어요" (the category alone when the rule names no steps)."""
    done = [s for s in steps if s not in ("배출하기", "담기")]
    if not done:
        return f"{label}{_object_particle(label)} 규칙대로 배출했어요"
    last = done[-1]
    return f"{label} 규칙대로 {' · '.join(done)}{_object_particle(last)} 하고 배출했어요"


def _reward(character: Character, label: str, steps: list[str], *, newly_acquired: bool) -> Reward:
    return Reward(
        code=character.code,
        name=character.name,
        dialog=character.dialog,
        match_reason=reward_reason(label, steps),
        type=character.type,
        newly_acquired=newly_acquired,
    )


def _object_particle(word: str) -> str:
    """을 after a final consonant (받침), 를 after a vowel."""
    last = word[-1:] or "를"
    if "가" <= last <= "힣":
        return "을" if (ord(last) - ord("가")) % 28 else "를"
    return "을(를)"
