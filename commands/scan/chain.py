"""The scan chain: ``RequestScan`` → queued → vision → rule → answer, as events on the job.

The handler is a loop over the job's recorded state: it picks the first stage that is not
recorded, runs it, and appends the stage's events with deterministic ids (``effect_id(job,
step)``) and ``expected_version`` = the version it read. So:

- a redelivered half-done job resumes at the first missing stage; a stage already recorded is
  never run again (no second model call). The job is not read before the first append: a
  new job has nothing to read, and a redelivery's first append (``ScanQueued``, expected
  version 0) is a duplicate or a conflict, after which the job is read;
- two deliveries racing on one job append each step once: the loser's append is a duplicate
  (same ids, nothing written) or a conflict, after which it re-reads the job and goes on;
- a permanent failure ends the job with ``ScanFailed`` (a failed ``done``), never a stuck job.

The reward stage and the successful ``done`` belong to the reward handler (``commands.reward``),
triggered by ``AnswerCompleted`` on the events log.
"""

from __future__ import annotations

import logging

import schemas
from agents.knowledge import KnowledgeBase
from agents.llm.ports import LLM, Vision
from agents.llm.providers import served_model
from commands.scan.job import ScanJob, job_event, load_job
from commands.scan.stages import MediaKey, run_answer, run_rule, run_vision
from eventstore.causation import caused_by
from eventstore.errors import ConcurrencyConflict, PartialDuplicate
from eventstore.port import EventStorePort
from media.store import MediaStore
from schemas.envelope import Envelope
from schemas.registry import Event, MessageRegistry
from schemas.scan import (
    PROGRESS,
    AnswerCompleted,
    RequestScan,
    RuleCompleted,
    ScanFailed,
    ScanQueued,
    Stage,
    StageStarted,
    VisionCompleted,
)

log = logging.getLogger(__name__)

# Every run appends at most four batches; the rest is room for re-reads after races.
MAX_ROUNDS = 16


class ScanChainStuck(RuntimeError):
    """The job kept changing under the handler; the runner will deliver the command again."""


async def handle_request_scan(
    envelope: Envelope,
    command: RequestScan,
    *,
    store: EventStorePort,
    vision: Vision,
    llm: LLM,
    kb: KnowledgeBase,
    media: MediaStore,
    media_key: MediaKey,
    registry: MessageRegistry = schemas.registry,
) -> None:
    """Run the scan chain of ``command`` from wherever its job stands.

    ``vision``/``llm`` pick their provider by ``command.model`` (a ``ModelRouter``); simulated
    latency lives in the adapters. ``media_key`` maps our cdn URLs to media keys.
    """
    job_id = command.job_id
    # Not read: a first delivery finds no job, and the first append (expected version 0, the
    # deterministic ids) tells a redelivery apart anyway: a duplicate or a conflict, after
    # which the loop reads the job and resumes where it stands.
    job = ScanJob(job_id)
    metadata = caused_by(envelope, command.user_id)  # the same for every event of the run
    for _ in range(MAX_ROUNDS):
        events = await _next_events(
            job, command, vision=vision, llm=llm, kb=kb, media=media, media_key=media_key
        )
        if not events:
            return
        batch = [job_event(registry, job_id, _step(event), event, metadata=metadata)
                 for event in events]
        try:
            result = await store.append(batch, expected_version=job.version)
        except (ConcurrencyConflict, PartialDuplicate):
            job = await load_job(store, job_id, registry)  # someone else moved the job on
            continue
        if result.duplicate:
            job = await load_job(store, job_id, registry)  # recorded before: trust the log
            continue
        for event, record in zip(events, result.records, strict=True):
            job.apply(event, record.version)
    raise ScanChainStuck(f"scan job {job_id} did not settle after {MAX_ROUNDS} rounds")


async def _next_events(
    job: ScanJob,
    command: RequestScan,
    *,
    vision: Vision,
    llm: LLM,
    kb: KnowledgeBase,
    media: MediaStore,
    media_key: MediaKey,
) -> list[Event]:
    """The events of the first stage not recorded yet ([] when the chain's part is done)."""
    if job.finished or job.answer is not None:
        return []
    started: list[Event] = []
    if job.queued is None:
        served = served_model(vision, command.model)
        if served.fallback:
            log.warning("scan %s: model %r cannot be served (%s); using %r", command.job_id,
                        served.requested, served.reason, served.model)
        queued = ScanQueued(
            user_id=command.user_id,
            image_url=command.image_url,
            user_input=command.user_input,
            model=command.model,
            served_model=served.model if served.fallback else None,
            model_fallback=served.reason,
        )
        return [queued, StageStarted(stage=Stage.VISION, progress=PROGRESS[Stage.QUEUED])]
    request = job.queued  # what was queued is what runs, even if a later command differs
    if job.vision is None:
        if Stage.VISION not in job.started:
            started = [StageStarted(stage=Stage.VISION, progress=PROGRESS[Stage.QUEUED])]
        seen = await run_vision(
            user_id=request.user_id,
            image_url=request.image_url,
            hint=request.user_input,
            model=request.model_to_use,
            vision=vision,
            media=media,
            media_key=media_key,
        )
        # The rule is a local lookup: record it with the vision result (one append, not two).
        if isinstance(seen[0], VisionCompleted):
            seen += run_rule(seen[0], kb=kb, hint=request.user_input)
        return started + seen
    if job.rule is None:
        if Stage.RULE not in job.started:
            started = [StageStarted(stage=Stage.RULE, progress=PROGRESS[Stage.VISION])]
        return started + run_rule(job.vision, kb=kb, hint=request.user_input)
    if Stage.ANSWER not in job.started:
        started = [StageStarted(stage=Stage.ANSWER, progress=PROGRESS[Stage.RULE])]
    return started + await run_answer(
        user_id=request.user_id,
        hint=request.user_input,
        model=request.model_to_use,
        seen=job.vision,
        ruled=job.rule,
        llm=llm,
    )


def _step(event: Event) -> str:
    """The step name an event's deterministic id is derived from (unique within a job)."""
    match event:
        case ScanQueued():
            return "queued"
        case StageStarted():
            return f"{event.stage.value}.started"
        case VisionCompleted():
            return "vision"
        case RuleCompleted():
            return "rule"
        case AnswerCompleted():
            return "answer"
        case ScanFailed():
            return "failed"
    raise TypeError(f"the scan chain does not append {type(event).__name__}")
