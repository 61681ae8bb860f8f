"""The scan job's aggregate as handlers see it: its events folded into one state.

Handlers never keep state between deliveries: they load the job's events, fold them with
``ScanJob.from_events`` and continue from there, so a redelivered half-done job picks up at the
first stage that is not recorded yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from eventstore.causation import effect_id
from eventstore.port import EventStorePort
from schemas.envelope import Envelope, Metadata
from schemas.registry import Event, MessageRegistry
from schemas.scan import (
    SCAN_JOB,
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


@dataclass
class ScanJob:
    """Everything the scan chain and the reward handler need to know about one job."""

    job_id: str
    version: int = 0
    queued: ScanQueued | None = None
    started: set[Stage] = field(default_factory=set)
    vision: VisionCompleted | None = None
    rule: RuleCompleted | None = None
    answer: AnswerCompleted | None = None
    reward: RewardCompleted | None = None
    completed: ScanCompleted | None = None
    failed: ScanFailed | None = None

    @property
    def finished(self) -> bool:
        """A ``done`` (completed or failed) is recorded: nothing more may be appended."""
        return self.completed is not None or self.failed is not None

    def apply(self, event: Event, version: int) -> None:
        self.version = version
        match event:
            case ScanQueued():
                self.queued = event
            case StageStarted():
                self.started.add(event.stage)
            case VisionCompleted():
                self.vision = event
            case RuleCompleted():
                self.rule = event
            case AnswerCompleted():
                self.answer = event
            case RewardCompleted():
                self.reward = event
            case ScanCompleted():
                self.completed = event
            case ScanFailed():
                self.failed = event

    @classmethod
    def from_events(
        cls, job_id: str, envelopes: Iterable[Envelope], registry: MessageRegistry
    ) -> ScanJob:
        job = cls(job_id)
        for envelope in envelopes:
            message = registry.decode_envelope(envelope)
            if isinstance(message, Event):
                job.apply(message, envelope.version)
        return job


async def load_job(
    store: EventStorePort, job_id: str, registry: MessageRegistry, *, after_version: int = 0
) -> ScanJob:
    """The job's current state, read from its own stream.

    With ``after_version`` only later events are read (cheaper for a handler that knows the
    job's history up to there): stages before it are then absent from the state, but
    ``version`` and everything after it are exact.
    """
    envelopes = await store.read_aggregate(job_id, after_version=after_version)
    job = ScanJob.from_events(job_id, envelopes, registry)
    job.version = max(job.version, after_version)
    return job


def job_event(
    registry: MessageRegistry,
    job_id: str,
    step: str,
    event: Event,
    *,
    metadata: Metadata,
) -> Envelope:
    """An event of the job's aggregate with the deterministic id of ``step``; ``metadata`` is
    ``caused_by(cause, user_id)``, built once for all the events of one handler run."""
    return registry.envelope(
        event,
        aggregate_id=job_id,
        aggregate_type=SCAN_JOB,
        metadata=metadata,
        id=effect_id(job_id, step),
    )
