"""Synthetic but realistic event streams for benchmarks and tests of the read side.

A scan job is the real chain (queued → vision → rule → answer → reward → done, with stage
starts), one in twenty fails at the rule stage; users register, log in and are granted a
character the first time one of their scans earns it. Timestamps advance by ``step_s`` per job
from ``start_ts`` so statistics spread over several days.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from eventstore.store import ANY, ExpectedVersion
from schemas.classification import RECYCLABLE, Classification, ScanAnswer
from schemas.envelope import Envelope, Metadata
from schemas.registry import Event, MessageRegistry
from schemas.scan import (
    SCAN_JOB,
    AnswerCompleted,
    Reward,
    RewardCompleted,
    RuleCompleted,
    ScanCompleted,
    ScanFailed,
    ScanQueued,
    Stage,
    StageStarted,
    VisionCompleted,
)
from schemas.users import USER, CharacterGranted, UserLoggedIn, UserRegistered

# (middle category, character code, character name); a few non-recyclable items in between.
ITEMS: tuple[tuple[str, str, str] | None, ...] = (
    ("무색페트병", "char-petty", "페티"),
    ("금속류", "char-metally", "메탈리"),
    ("종이", "char-paepy", "페이피"),
    None,
    ("플라스틱류", "char-plea", "플리"),
    ("비닐류", "char-bini", "비니"),
    ("유리병", "char-glassy", "글래시"),
    ("종이팩", "char-factory", "팩토리"),
    None,
    ("전지", "char-battery", "배리"),
    ("의류및원단", "char-cotton", "코튼"),
    ("전기전자제품", "char-elec", "일렉"),
)

Append = tuple[list[Envelope], ExpectedVersion]


@dataclass
class SyntheticLog:
    registry: MessageRegistry
    users: int = 50
    start_ts: float = 1_790_000_000.0
    step_s: float = 7.0
    salt: int = field(default_factory=lambda: uuid.uuid4().int >> 64)  # distinct job ids per log
    _jobs: int = 0
    _owned: set[tuple[str, str]] = field(default_factory=set)
    _registered: set[str] = field(default_factory=set)

    def _envelopes(
        self, aggregate: str, kind: str, events: list[Event], ts: float, user: str
    ) -> list[Envelope]:
        meta = Metadata(correlation_id=aggregate, user_id=user)
        return [
            self.registry.envelope(
                e,
                aggregate_id=aggregate,
                aggregate_type=kind,
                metadata=meta,
                timestamp=ts + i * 0.01,
            )
            for i, e in enumerate(events)
        ]

    def scan_job(self) -> list[Append]:
        """The appends of one more scan job (and of its user's aggregate, when it changes)."""
        n = self._jobs
        self._jobs += 1
        user = f"user-{n % self.users}"
        job = str(uuid.UUID(int=self.salt << 64 | n))
        ts = self.start_ts + n * self.step_s
        appends: list[Append] = []
        if user not in self._registered:
            self._registered.add(user)
            registered = UserRegistered(
                username=user, nickname=f"닉네임{n}", provider="dev", provider_user_id=user
            )
            appends.append(
                (
                    self._envelopes(
                        user, USER, [registered, UserLoggedIn(provider="dev")], ts - 1, user
                    ),
                    ANY,
                )
            )
        item = ITEMS[n % len(ITEMS)]
        cls = (
            Classification(
                major_category=RECYCLABLE, middle_category=item[0], minor_category="기타"
            )
            if item
            else Classification(major_category="일반종량제폐기물", minor_category="영수증")
        )
        events: list[Event] = [
            ScanQueued(user_id=user, image_url=f"https://cdn.example/scan/{job}.jpg"),
            StageStarted(stage=Stage.VISION, progress=10),
            VisionCompleted(classification=cls, situation_tags=["라벨부착"], confidence=0.91),
            StageStarted(stage=Stage.RULE, progress=45),
        ]
        if n % 20 == 19:
            events.append(ScanFailed(user_id=user, stage=Stage.RULE, error="규칙 저장소 오류"))
            return [*appends, (self._envelopes(job, SCAN_JOB, events, ts, user), 0)]
        reward = None
        if item is not None:
            reward = Reward(
                code=item[1],
                name=item[2],
                dialog="고마워!",
                match_reason=item[0],
                type=item[0],
                newly_acquired=(user, item[1]) not in self._owned,
            )
        events += [
            RuleCompleted(disposal_rules={"category": cls.middle_category, "steps": ["비운다"]}),
            StageStarted(stage=Stage.ANSWER, progress=60),
            AnswerCompleted(
                user_id=user,
                classification=cls,
                rule_found=True,
                answer=ScanAnswer(
                    disposal_steps={"1": "내용물을 비우세요"},
                    user_answer="깨끗이 비워서 배출하세요.",
                ),
            ),
            StageStarted(stage=Stage.REWARD, progress=90),
            RewardCompleted(reward=reward),
            ScanCompleted(user_id=user),
        ]
        appends.append((self._envelopes(job, SCAN_JOB, events, ts, user), 0))
        if reward is not None and reward.newly_acquired:
            self._owned.add((user, reward.code))
            granted = CharacterGranted(
                character_code=reward.code, character_name=reward.name, source_job_id=job
            )
            appends.append((self._envelopes(user, USER, [granted], ts + 1, user), ANY))
        return appends

    def appends(self, jobs: int, chunk: int = 500) -> Iterator[list[Append]]:
        """``jobs`` more scan jobs, in chunks of about ``chunk`` appends (for append_batch)."""
        pending: list[Append] = []
        for _ in range(jobs):
            pending += self.scan_job()
            if len(pending) >= chunk:
                yield pending
                pending = []
        if pending:
            yield pending
