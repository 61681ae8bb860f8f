"""The read models as the gateway queries them, projected from real events."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from eventstore.store import ANY, EventStore
from projections.builtin import select
from projections.context import ReadSide
from projections.replay import heads, replay
from readmodels.catalog import seed_catalog
from readmodels.queries import (
    get_scan,
    get_user,
    list_characters,
    owns_character,
    rewards_per_character,
    scans_per_category,
)
from schemas.classification import RECYCLABLE, Classification, ScanAnswer
from schemas.registry import Event
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
from schemas.users import (
    USER,
    CharacterGranted,
    ProfileUpdated,
    UserDeleted,
    UserLoggedIn,
    UserRegistered,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

T0 = 1_790_003_600.0  # 2026-09-21 15:13 UTC = 2026-09-22 00:13 KST: statistics use KST days
PET = Classification(major_category=RECYCLABLE, middle_category="무색페트병", minor_category="음료PET병")
PETTY = Reward(code="char-petty", name="페티", dialog="라벨은 떼고!", match_reason="무색페트병",
               type="투명 페트병")


async def append(store: EventStore, aggregate: str, kind: str, events: list[Event], ts: float) -> None:
    envelopes = [
        store.registry.envelope(e, aggregate_id=aggregate, aggregate_type=kind, timestamp=ts + i)
        for i, e in enumerate(events)
    ]
    await store.append(envelopes, expected_version=ANY)


async def project(side: ReadSide) -> None:
    targets = await heads(side)
    for projection in select():
        await replay(side, projection, "v1", targets)


async def test_scan_user_character_and_statistics_models(side: ReadSide, store: EventStore) -> None:
    await seed_catalog(side.pool)
    done_job, failed_job = str(uuid.uuid4()), str(uuid.uuid4())
    await append(store, "alice", USER, [
        UserRegistered(username="alice", nickname="앨리스", provider="kakao",
                       provider_user_id="k-1"),
        UserLoggedIn(provider="kakao"),
        ProfileUpdated(phone_number="010-1234-5678"),
    ], T0)
    await append(store, done_job, SCAN_JOB, [
        ScanQueued(user_id="alice", image_url="https://cdn/x.jpg"),
        StageStarted(stage=Stage.VISION, progress=10),
        VisionCompleted(classification=PET, situation_tags=["라벨부착"], confidence=0.9),
        RuleCompleted(disposal_rules={"steps": ["비운다", "헹군다"]}),
        AnswerCompleted(user_id="alice", classification=PET, rule_found=True,
                        answer=ScanAnswer(disposal_steps={"1": "라벨 제거"}, user_answer="떼세요")),
        RewardCompleted(reward=PETTY),
        ScanCompleted(user_id="alice"),
    ], T0 + 10)
    await append(store, "alice", USER, [
        CharacterGranted(character_code="char-petty", character_name="페티",
                         source_job_id=done_job),
    ], T0 + 20)
    await append(store, failed_job, SCAN_JOB, [
        ScanQueued(user_id="alice", image_url="https://cdn/y.jpg"),
        StageStarted(stage=Stage.VISION, progress=10),
        ScanFailed(user_id="alice", stage=Stage.VISION, error="vision timed out"),
    ], T0 + 30)
    await append(store, "bob", USER, [
        UserRegistered(username="bob", nickname="밥", provider="google", provider_user_id="g-2"),
        UserDeleted(),
    ], T0 + 40)
    await project(side)
    db = side.pool

    scan = await get_scan(db, done_job, "alice")
    assert scan is not None and scan.finished
    assert (scan.status, scan.stage, scan.progress, scan.version) == ("completed", "done", 100, 7)
    assert scan.classification == {
        "classification": PET.model_dump(), "situation_tags": ["라벨부착"], "confidence": 0.9,
        "question": None,
    }
    assert scan.disposal_rules == {"steps": ["비운다", "헹군다"]}
    assert scan.answer is not None and scan.answer["user_answer"] == "떼세요"
    assert scan.reward is not None and scan.reward["name"] == "페티"
    assert scan.rule_found is True and scan.error is None
    assert await get_scan(db, done_job, "bob") is None  # another user's job is unknown
    failed = await get_scan(db, failed_job, "alice")
    assert failed is not None and failed.status == "failed"
    assert failed.error == {"stage": "vision", "message": "vision timed out", "code": "scan_failed"}

    alice = await get_user(db, "alice")
    assert alice is not None
    assert (alice.username, alice.nickname, alice.phone_number) == ("alice", "앨리스", "010-1234-5678")
    assert (alice.points, alice.completed_scans, alice.deleted) == (10, 1, False)
    assert alice.last_login_at is not None and alice.last_login_at.timestamp() == T0 + 1
    bob = await get_user(db, "bob")
    assert bob is not None and bob.deleted
    assert (bob.username, bob.nickname, bob.phone_number) == (None, None, None)
    assert await get_user(db, "nobody") is None

    owned = await list_characters(db, "alice")
    assert [c.name for c in owned] == ["이코", "페티"]
    assert owned[1].acquired_at is not None and owned[1].type
    assert [c.name for c in await list_characters(db, "carol")] == ["이코"]
    assert await owns_character(db, "alice", "페티")
    assert await owns_character(db, "carol", "이코")
    assert not await owns_character(db, "carol", "페티")

    daily = await scans_per_category(db)
    assert [(d.day, d.middle_category, d.count) for d in daily] == [
        (date(2026, 9, 22), "무색페트병", 1)
    ]
    assert await scans_per_category(db, since=date(2026, 9, 23)) == []
    rewards = await rewards_per_character(db)
    assert [(r.character_code, r.name, r.count) for r in rewards] == [("char-petty", "페티", 1)]
