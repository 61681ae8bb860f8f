"""Each projection's fold over events, without servers: the rows its handlers reach, the
statements it leaves for Postgres, and that neither the batch size nor the order of the shards
changes the rows. Events come from the in-memory event store, written by hand or by the real
handlers. (The same rows written to and queried from Postgres: test_read_models.py; the
checkpoint committed with them: test_commit.py.)"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest

import schemas
from commands.chat.scripted import ScriptedChatGraph
from commands.chat.turn import Coalescing, handle_send_message
from eventstore.keys import Layout
from eventstore.memory import MemoryEventStore
from eventstore.store import ANY
from projections.builtin import select
from projections.chat import CHAT, SCRUB_BY_CHAT
from projections.halts import EventRejected
from projections.scans import NEW_SCANS, SCANS
from projections.stats import STATS
from projections.users import USERS
from schemas.chat import CHAT as CHAT_AGGREGATE
from schemas.chat import (
    CHAT_TURN,
    PREVIEW_CHARS,
    ChatCreated,
    ChatRenamed,
    SendChatMessage,
    auto_title,
    clip,
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
from tests.commands.conftest import world_on
from tests.projections.memory_tables import MemoryTables, fold_log, reader_for

T0 = 1_790_003_600.0  # 2026-09-21 15:13 UTC = 2026-09-22 00:13 KST: statistics use KST days
PET = Classification(major_category=RECYCLABLE, middle_category="무색페트병", minor_category="음료PET병")
PETTY = Reward(code="char-petty", name="페티", dialog="라벨은 떼고!", match_reason="무색페트병",
               type="투명 페트병")


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


@pytest.fixture
def store() -> MemoryEventStore:
    return MemoryEventStore(Layout(namespace="folds", shards=4), schemas.registry)


async def append(
    store: MemoryEventStore, aggregate: str, kind: str, events: list[Event], ts: float
) -> None:
    envelopes = [
        schemas.registry.envelope(e, aggregate_id=aggregate, aggregate_type=kind, timestamp=ts + i)
        for i, e in enumerate(events)
    ]
    await store.append(envelopes, expected_version=ANY)


async def users_and_scans(store: MemoryEventStore) -> tuple[str, str]:
    """The events of test_read_models.py: a user with a rewarded and a failed scan, and a
    deleted user."""
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
    return done_job, failed_job


async def test_scan_user_character_and_statistics_rows(store: MemoryEventStore) -> None:
    done_job, failed_job = await users_and_scans(store)
    tables, counts = await fold_log(store, select())
    assert counts.skipped == 0 and counts.applied > 0

    scan = tables.row("scans", done_job)
    assert (scan["status"], scan["stage"], scan["progress"], scan["version"]) == (
        "completed", "done", 100, 7)
    assert json.loads(scan["classification"]) == {
        "classification": PET.model_dump(), "situation_tags": ["라벨부착"], "confidence": 0.9,
        "question": None,
    }
    assert json.loads(scan["disposal_rules"]) == {"steps": ["비운다", "헹군다"]}
    assert json.loads(scan["answer"])["user_answer"] == "떼세요"
    assert json.loads(scan["reward"])["name"] == "페티"
    assert scan["rule_found"] is True and "error" not in scan
    assert (scan["user_id"], scan["image_url"]) == ("alice", "https://cdn/x.jpg")
    assert (scan["created_at"], scan["finished_at"]) == (at(T0 + 10), at(T0 + 16))
    failed = tables.row("scans", failed_job)
    assert failed["status"] == "failed" and failed["finished_at"] == at(T0 + 32)
    assert json.loads(failed["error"]) == {
        "stage": "vision", "message": "vision timed out", "code": "scan_failed"}
    # New scans end their batch by scrubbing them if their user was erased meanwhile.
    scrubbed = [args[0] for args in tables.sql(NEW_SCANS[-1])]
    assert sorted(job for jobs in scrubbed for job in jobs) == sorted([done_job, failed_job])
    assert tables.row("scan_users", "bob") == {"erased_at": at(T0 + 41)}

    alice = tables.row("users", "alice")
    assert (alice["username"], alice["nickname"], alice["phone_number"]) == (
        "alice", "앨리스", "010-1234-5678")
    assert (alice["points"], alice["completed_scans"]) == (10, 1)
    assert alice["last_login_at"] == at(T0 + 1) and "deleted" not in alice
    bob = tables.row("users", "bob")
    assert bob["deleted"] and (bob["username"], bob["nickname"], bob["phone_number"]) == (
        None, None, None)

    assert tables.row("character_ownership", "alice", "char-petty") == {
        "name": "페티", "source_job_id": done_job, "acquired_at": at(T0 + 20)}
    assert tables.rows["stats_scans_daily"] == {(date(2026, 9, 22), "무색페트병"): {"count": 1}}
    assert tables.rows["stats_rewards"] == {("char-petty",): {"count": 1}}


async def test_batch_size_and_shard_order_do_not_change_the_rows(
    store: MemoryEventStore,
) -> None:
    for _ in range(3):
        await users_and_scans(store)
    whole, _ = await fold_log(store, select())
    for batch, shards in [(1, None), (2, [3, 2, 1, 0]), (3, [1, 3, 0, 2])]:
        split, _ = await fold_log(store, select(), batch=batch, shards=shards)
        assert split.rows == whole.rows, (batch, shards)


async def test_scan_jobs_run_by_the_handlers_fold_into_their_rows() -> None:
    world = world_on(MemoryEventStore(Layout(namespace="folds", shards=4), schemas.registry))
    jobs = [await world.scan("다 마신 생수병", user_id="carol") for _ in range(2)]
    jobs.append(await world.scan("치킨뼈", user_id="carol"))
    assert isinstance(world.store, MemoryEventStore)
    tables, counts = await fold_log(world.store, [SCANS, USERS, STATS])
    assert counts.skipped == 0
    rows = [tables.row("scans", job) for job in jobs]
    assert [(r["status"], r["progress"], r["user_id"]) for r in rows] == [
        ("completed", 100, "carol")] * 3
    assert [r["reward"] and json.loads(r["reward"])["name"] for r in rows] == ["페티", "페티", None]
    carol = tables.row("users", "carol")
    assert (carol["completed_scans"], carol["points"]) == (3, 30)
    assert sum(row["count"] for row in tables.rows["stats_scans_daily"].values()) == 3
    assert tables.rows["stats_rewards"] == {("char-petty",): {"count": 2}}


async def test_a_chat_turn_folds_into_the_chat_read_model(store: MemoryEventStore) -> None:
    chat_id, user = str(uuid.uuid4()), "dave"
    created = schemas.registry.envelope(ChatCreated(user_id=user, title=None),
                                        aggregate_id=chat_id, aggregate_type=CHAT_AGGREGATE)
    await store.append([created], expected_version=0)
    job_id = str(uuid.uuid4())
    command = SendChatMessage(job_id=job_id, chat_id=chat_id, user_id=user, message="페트병 어떻게 버려?")
    envelope = schemas.registry.envelope(command, aggregate_id=job_id, aggregate_type=CHAT_TURN)
    await handle_send_message(envelope, command, store=store, graph=ScriptedChatGraph(),
                              coalescing=Coalescing(max_tokens=5, interval_s=0.02))
    await append(store, chat_id, CHAT_AGGREGATE, [ChatRenamed(title="분리배출")], T0)

    tables, _ = await fold_log(store, [CHAT])
    session = tables.row("chat_sessions", chat_id)
    assert (session["user_id"], session["title"], session["deleted"]) == (user, None, False)
    assert tables.row("chat_users", user) == {"chats": 1}
    messages = sorted(tables.rows["chat_messages"].values(), key=lambda m: m["role"] != "user")
    assert [(m["role"], m["chat_id"]) for m in messages] == [
        ("user", chat_id), ("assistant", chat_id)]
    assert messages[0]["content"] == "페트병 어떻게 버려?"
    assert messages[1]["content"].startswith("페트병은")
    previews = tables.sql("UPDATE {chat_sessions} SET preview")
    assert [(args[0], args[1], args[3]) for args in previews] == [
        (chat_id, clip(m["content"], PREVIEW_CHARS), auto_title(m["content"]) if i == 0 else None)
        for i, m in enumerate(messages)
    ]
    assert tables.sql("UPDATE {chat_sessions} SET title") == [(chat_id, "분리배출")]
    assert tables.sql(SCRUB_BY_CHAT[0]) == [([chat_id],)]


async def test_an_entry_the_projection_cannot_read_halts_the_fold_unless_skipped(
    store: MemoryEventStore,
) -> None:
    from projections.fold import fold

    await append(store, "erin", USER, [UserLoggedIn(provider="kakao")], T0)
    shard = store.layout.shard_of("erin")
    good = (await store.read_shard(shard))[0]
    bad = good.model_copy(update={"data": {"provider": 7}})  # does not validate
    entries = [("1-0", good.to_fields()), ("2-0", bad.to_fields())]
    with pytest.raises(EventRejected) as info:
        fold(USERS, reader_for(USERS), shard, entries)
    assert (info.value.position, info.value.kind) == (2, "malformed")
    folded = fold(USERS, reader_for(USERS), shard, entries, skips={2: str(bad.id)})
    assert (folded.counts.applied, folded.counts.skipped) == (1, 1)
    ignored = fold(SCANS, reader_for(SCANS), shard, entries[:1])
    assert (ignored.counts.applied, ignored.counts.ignored) == (0, 1)
    tables = MemoryTables()
    tables.apply(folded.changes)
    assert tables.row("users", "erin") == {"provider": "kakao", "last_login_at": at(T0)}
